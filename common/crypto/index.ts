export { initCrypto, sodium } from './sodium.js';
export { nodeAead, sodiumAead, hybridAead, fastestAead, NATIVE_AEAD_MIN_BYTES, type Aead, AEAD_TAG_BYTES } from './aead.js';
export { CipherState } from './noise/cipher-state.js';
export { HandshakeState, generateX25519KeyPair, x25519KeyPairFromPrivate, type KeyPair } from './noise/handshake-state.js';
export { fingerprint, shortFingerprint, parseFingerprint, fingerprintsEqual, base32Encode } from './fingerprint.js';
export { generateSigningKeyPair, signDetached, verifyDetached, SIGNATURE_BYTES } from './signing.js';
export { loadOrCreateIdentity, readIdentity, generateIdentity, type Identity } from './key-store.js';
export { SecureChannel } from './secure-channel.js';
export {
  acceptSecure,
  connectSecure,
  dialTcp,
  secureHandshake,
  prologueFor,
  type ConnectSecureOptions,
  type HandshakeContext,
  type RemoteHello,
  type Role,
  type SecureChannelOptions,
} from './handshake.js';

/** Generates an X25519 Noise static key pair (alias kept short for callers and tests). */
export { generateX25519KeyPair as generateStaticKeyPair } from './noise/handshake-state.js';
export { proveStaticKey, verifyStaticKeyProof } from './static-key-proof.js';
export { issueTicket, verifyTicket, TICKET_CLOCK_SKEW_MS, type SignedTicket, type TicketClaims, type TicketCheck } from './ticket.js';
export { issueRevocation, verifyRevocation, type RevocationClaims, type RevocationReason, type SignedRevocation } from './revocation.js';
export { signLoginProof, verifyLoginProof } from './login-proof.js';
export {
  sealGroupDatagram,
  openGroupDatagram,
  deriveSenderKey,
  generateGroupInstance,
  encodeGroupHeader,
  decodeGroupHeader,
  GroupReceiveState,
  GroupRateBuckets,
  GROUP_DATAGRAM_VERSION,
  GROUP_HEADER_BYTES,
  GROUP_ID_BYTES,
  GROUP_CLOCK_SKEW_MS,
  GROUP_RATE_DEFAULTS,
  MAX_GROUP_DATAGRAM_BYTES,
  MIN_GROUP_DATAGRAM_BYTES,
  MAX_GROUP_BODY_BYTES,
  MAX_GROUP_FRAGMENT_BYTES,
  type GroupHeader,
  type GroupOpenContext,
  type GroupRateLimiter,
  type GroupRateBucketsOptions,
  type GroupReceiveStateOptions,
  type GroupReceiveStats,
  type GroupRejectCode,
  type GroupSenderRef,
  type GroupSignatureVerifier,
  type OpenedGroupDatagram,
  type SealGroupDatagramParams,
} from './group-datagram.js';
export { ReplayWindow, SenderWindows, REPLAY_WINDOW_BITS, SENDER_WINDOWS_DEFAULTS, type ReplayVerdict, type SenderWindowsOptions } from './replay-window.js';
