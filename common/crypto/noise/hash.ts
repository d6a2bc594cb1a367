import { sodium } from '../sodium.js';

/** A Noise hash function (§4.3) with the HMAC and HKDF built on it (§4.3, RFC 2104). */
export interface NoiseHash {
  readonly name: 'BLAKE2b' | 'SHA256';
  readonly hashLen: number;
  readonly blockLen: number;
  hash(...parts: Uint8Array[]): Uint8Array;
}

export const BLAKE2B: NoiseHash = {
  name: 'BLAKE2b',
  hashLen: 64,
  blockLen: 128,
  hash(...parts) {
    const s = sodium();
    const state = s.crypto_generichash_init(null, 64);
    for (const part of parts) s.crypto_generichash_update(state, part);
    return s.crypto_generichash_final(state, 64);
  },
};

export const SHA256: NoiseHash = {
  name: 'SHA256',
  hashLen: 32,
  blockLen: 64,
  hash(...parts) {
    return sodium().crypto_hash_sha256(Buffer.concat(parts));
  },
};

/**
 * HMAC written out per RFC 2104: libsodium's keyed BLAKE2b is a different construction and would
 * not interoperate with other Noise implementations.
 */
export function hmac(h: NoiseHash, key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  let k = key;
  if (k.length > h.blockLen) k = h.hash(k);
  const ipad = new Uint8Array(h.blockLen).fill(0x36);
  const opad = new Uint8Array(h.blockLen).fill(0x5c);
  for (let i = 0; i < k.length; i++) {
    ipad[i] = (ipad[i] as number) ^ (k[i] as number);
    opad[i] = (opad[i] as number) ^ (k[i] as number);
  }
  return h.hash(opad, h.hash(ipad, ...data));
}

/** Noise HKDF (§4.3): two or three outputs of hashLen bytes each. */
export function hkdf(h: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hmac(h, chainingKey, ikm);
  const out1 = hmac(h, tempKey, Uint8Array.of(1));
  const out2 = hmac(h, tempKey, out1, Uint8Array.of(2));
  if (outputs === 2) return [out1, out2];
  return [out1, out2, hmac(h, tempKey, out2, Uint8Array.of(3))];
}
