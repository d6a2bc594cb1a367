import { signDetached, verifyDetached } from './signing.js';

/**
 * Proof that the device logging in holds its Ed25519 key *in this handshake*: a signature over h2,
 * the handshake hash after msg 2, which both sides know and which no other handshake shares
 * (fresh ephemerals on both sides). A proof recorded from one login is useless in any other
 * (SECURITY.md negative test 7: a replayed pop is refused).
 */
const LOGIN_PROOF_DOMAIN = 'sala/v1/login-pop\0';

export function signLoginProof(signingPrivateKey: Uint8Array, handshakeHashAfterMsg2: Uint8Array): Uint8Array {
  return signDetached(signingPrivateKey, LOGIN_PROOF_DOMAIN, handshakeHashAfterMsg2);
}

export function verifyLoginProof(signingPublicKey: Uint8Array, handshakeHashAfterMsg2: Uint8Array, proof: Uint8Array): boolean {
  return verifyDetached(signingPublicKey, LOGIN_PROOF_DOMAIN, handshakeHashAfterMsg2, proof);
}
