export { initCrypto, sodium } from './sodium.js';
export { nodeAead, sodiumAead, fastestAead, type Aead, AEAD_TAG_BYTES } from './aead.js';
export { CipherState } from './noise/cipher-state.js';
export { HandshakeState, generateX25519KeyPair, x25519KeyPairFromPrivate, type KeyPair } from './noise/handshake-state.js';
export { fingerprint, shortFingerprint, parseFingerprint, fingerprintsEqual, base32Encode } from './fingerprint.js';
export { generateSigningKeyPair, signDetached, verifyDetached, SIGNATURE_BYTES } from './signing.js';
export { loadOrCreateIdentity, readIdentity, generateIdentity, ensurePrivateDir, type Identity } from './key-store.js';
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
