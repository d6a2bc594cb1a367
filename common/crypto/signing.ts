import { sodium } from './sodium.js';
import type { KeyPair } from './noise/handshake-state.js';

export const SIGNATURE_BYTES = 64;

/** An Ed25519 key pair: device and server identities sign with it; it never enters Noise (§14). */
export function generateSigningKeyPair(): KeyPair {
  const { publicKey, privateKey } = sodium().crypto_sign_keypair();
  return { publicKey, privateKey };
}

export function signingKeyPairFromSeed(seed: Uint8Array): KeyPair {
  const { publicKey, privateKey } = sodium().crypto_sign_seed_keypair(seed);
  return { publicKey, privateKey };
}

/**
 * Signs `domain ‖ message`. Every signature Sala makes names its purpose first (`sala/v1/ticket\0`,
 * …) so a signature made for one purpose can never be replayed as another.
 */
export function signDetached(privateKey: Uint8Array, domain: string, message: Uint8Array): Uint8Array {
  return sodium().crypto_sign_detached(withDomain(domain, message), privateKey);
}

export function verifyDetached(publicKey: Uint8Array, domain: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== 32) return false;
  try {
    return sodium().crypto_sign_verify_detached(signature, withDomain(domain, message), publicKey);
  } catch {
    return false;
  }
}

function withDomain(domain: string, message: Uint8Array): Buffer {
  if (!domain.endsWith('\0')) throw new Error('signature domains end with NUL');
  return Buffer.concat([Buffer.from(domain, 'utf8'), message]);
}
