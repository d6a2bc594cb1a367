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
