import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto';
import { SalaError } from '../errors.js';
import { sodium } from './sodium.js';

export const AEAD_KEY_BYTES = 32;
export const AEAD_TAG_BYTES = 16;
export const AEAD_NONCE_BYTES = 12;

/**
 * ChaCha20-Poly1305 (RFC 8439), the IETF construction Noise's ChaChaPoly names (§12.3).
 * Two backends compute the same function: libsodium (used in the handshake) and node:crypto
 * (OpenSSL, several times faster for bulk transport). Tests cross-check them byte for byte.
 */
export interface Aead {
  readonly backend: 'libsodium' | 'node';
  /**
   * Encrypts the concatenation of `parts` (so callers need not copy a header onto a payload). The
   * result starts with `headroomBytes` unused bytes, where a caller can put a frame header without
   * copying the ciphertext again.
   */
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[], headroomBytes?: number): Buffer;
  /**
   * The same bytes as `seal`, as pieces whose concatenation is `seal`'s result: a large payload is
   * then encrypted once into its own buffer and never copied again into a frame (a socket writes the
   * pieces with one writev). The first piece starts with the `headroomBytes`.
   */
  sealParts(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[], headroomBytes?: number): Buffer[];
  /** Returns the plaintext, or throws SALA_E_CHANNEL_DECRYPT_FAILED; never returns unverified bytes. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Buffer;
}

function authFailed(cause?: unknown): SalaError {
  return new SalaError('SALA_E_CHANNEL_DECRYPT_FAILED', 'Received data failed authentication.', { cause });
}

export const sodiumAead: Aead = {
  backend: 'libsodium',
  seal(key, nonce, ad, parts, headroomBytes = 0) {
    const plaintext = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    const out = sodium().crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
    if (headroomBytes === 0) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    const framed = Buffer.allocUnsafe(headroomBytes + out.length);
    framed.set(out, headroomBytes);
    return framed;
  },
  sealParts(key, nonce, ad, parts, headroomBytes = 0) {
    // The WASM call returns one buffer anyway; there is nothing to save by splitting it.
    return [sodiumAead.seal(key, nonce, ad, parts, headroomBytes)];
  },
  open(key, nonce, ad, ciphertext) {
    if (ciphertext.length < AEAD_TAG_BYTES) throw authFailed();
    try {
      const out = sodium().crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    } catch (err) {
      throw authFailed(err);
    }
  },
};

/**
 * node:crypto backend. Two rules from SECURITY.md H2: the tag length is always fixed at 16 (Node
 * would otherwise accept a shorter tag), and `update()` output is unauthenticated until `final()`
 * succeeds, so nothing is returned before then.
 */
export const nodeAead: Aead = {
  backend: 'node',
  seal(key, nonce, ad, parts, headroomBytes = 0) {
    const pieces = nodeAead.sealParts(key, nonce, ad, parts, headroomBytes);
    let bytes = 0;
    for (const piece of pieces) bytes += piece.length;
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, bytes);
  },
  sealParts(key, nonce, ad, parts, headroomBytes = 0) {
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    let plaintextBytes = 0;
    for (const part of parts) plaintextBytes += part.length;
    // Transport frames have no AD; the call costs a round trip into OpenSSL per frame.
    if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintextBytes });
    const out: Buffer[] = headroomBytes === 0 ? [] : [Buffer.allocUnsafe(headroomBytes)];
    for (const part of parts) if (part.length > 0) out.push(cipher.update(part));
    const tail = cipher.final(); // empty for a stream cipher, but OpenSSL may hold bytes back
    if (tail.length > 0) out.push(tail);
    out.push(cipher.getAuthTag());
    return out;
  },
  open(key, nonce, ad, ciphertext) {
    if (ciphertext.length < AEAD_TAG_BYTES) throw authFailed();
    const bodyBytes = ciphertext.length - AEAD_TAG_BYTES;
    try {
      const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
      decipher.setAuthTag(ciphertext.subarray(bodyBytes));
      if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyBytes });
      const head = decipher.update(ciphertext.subarray(0, bodyBytes));
      const tail = decipher.final();
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch (err) {
      throw authFailed(err);
    }
  },
};

/**
 * Below this many bytes libsodium is faster: node:crypto pays ~10 µs to set up a cipher object per
 * message, which dominates small chat frames; above it OpenSSL's vectorised ChaCha20 wins (measured:
 * 100 B 5.6 vs 13 µs; 4 KiB about equal; 64 KiB 331 vs 121 µs — docs/performance.md).
 */
export const NATIVE_AEAD_MIN_BYTES = 4096;

/** Chooses the faster backend per message; both compute the same bytes, so the choice is free. */
export const hybridAead: Aead = {
  backend: 'node',
  seal(key, nonce, ad, parts, headroomBytes = 0) {
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    return (bytes < NATIVE_AEAD_MIN_BYTES ? sodiumAead : nodeAead).seal(key, nonce, ad, parts, headroomBytes);
  },
  sealParts(key, nonce, ad, parts, headroomBytes = 0) {
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    return (bytes < NATIVE_AEAD_MIN_BYTES ? sodiumAead : nodeAead).sealParts(key, nonce, ad, parts, headroomBytes);
  },
  open(key, nonce, ad, ciphertext) {
    return (ciphertext.length < NATIVE_AEAD_MIN_BYTES + AEAD_TAG_BYTES ? sodiumAead : nodeAead).open(key, nonce, ad, ciphertext);
  },
};

/** The fastest choice this Node build offers; OpenSSL builds without ChaCha20 use libsodium alone. */
export function fastestAead(): Aead {
  return getCiphers().includes('chacha20-poly1305') ? hybridAead : sodiumAead;
}
