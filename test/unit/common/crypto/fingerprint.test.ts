import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FINGERPRINT_CHARS,
  base32Encode,
  fingerprint,
  fingerprintsEqual,
  parseFingerprint,
  shortFingerprint,
} from '../../../../common/crypto/fingerprint.js';
import {
  SIGNATURE_BYTES,
  generateSigningKeyPair,
  signDetached,
  signingKeyPairFromSeed,
  verifyDetached,
} from '../../../../common/crypto/signing.js';
import { initCrypto, sodium } from '../../../../common/crypto/sodium.js';

import { catchSalaError } from '../../../helpers/errors.js';


/** RFC 4648 §6 base32, written from the RFC independently of the implementation, unpadded. */
function referenceBase32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

const RFC4648_VECTORS: readonly (readonly [string, string])[] = [
  ['', ''],
  ['f', 'MY'],
  ['fo', 'MZXQ'],
  ['foo', 'MZXW6'],
  ['foob', 'MZXW6YQ'],
  ['fooba', 'MZXW6YTB'],
  ['foobar', 'MZXW6YTBOI'],
];

/** A fixed key: the bytes 0x00..0x1f. */
const FIXED_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
/** Computed once from the implementation and checked independently below; pins the format forever. */
const FIXED_KEY_FINGERPRINT = 'WNC4-HMXV-EO4H-Z5EA';
const FORMAT = /^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/;

describe('base32', () => {
  beforeAll(initCrypto);

  for (const [input, expected] of RFC4648_VECTORS) {
    it(`reference encoder matches RFC 4648 for "${input}"`, () => {
      expect(referenceBase32(Buffer.from(input))).toBe(expected);
    });

    it(`base32Encode matches RFC 4648 for "${input}"`, () => {
      expect(base32Encode(Buffer.from(input))).toBe(expected);
    });
  }

  it('agrees with the reference encoder on random inputs of every length up to 64', () => {
    for (let length = 0; length <= 64; length += 1) {
      const bytes = randomBytes(length);
      expect(base32Encode(bytes)).toBe(referenceBase32(bytes));
    }
  });
});

describe('fingerprint', () => {
  beforeAll(initCrypto);

  it('is 16 characters of A-Z and 2-7 in four dash-separated groups', () => {
    for (let i = 0; i < 20; i += 1) expect(fingerprint(randomBytes(32))).toMatch(FORMAT);
    expect(FINGERPRINT_CHARS).toBe(16);
  });

  it('is deterministic for one key', () => {
    const key = randomBytes(32);
    expect(fingerprint(key)).toBe(fingerprint(Uint8Array.from(key)));
  });

  it('differs between keys', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i += 1) seen.add(fingerprint(randomBytes(32)));
    expect(seen.size).toBe(50);
  });

  it('differs for keys that differ in one bit', () => {
    const flipped = Uint8Array.from(FIXED_KEY);
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    expect(fingerprint(flipped)).not.toBe(fingerprint(FIXED_KEY));
  });

  it('gives the pinned answer for a fixed key', () => {
    expect(fingerprint(FIXED_KEY)).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('equals base32(BLAKE2b-256("sala/v1/fp\\0" || key)) computed independently, first 16 characters grouped', () => {
    const digest = sodium().crypto_generichash(32, Buffer.concat([Buffer.from('sala/v1/fp\0', 'utf8'), FIXED_KEY]), null);
    const code = referenceBase32(digest).slice(0, 16);
    const grouped = [0, 4, 8, 12].map((i) => code.slice(i, i + 4)).join('-');
    expect(grouped).toBe(FIXED_KEY_FINGERPRINT);
    expect(fingerprint(FIXED_KEY)).toBe(grouped);
  });

  it('is not the plain BLAKE2b of the key (the domain string is mixed in)', () => {
    const plain = referenceBase32(sodium().crypto_generichash(32, FIXED_KEY, null)).slice(0, 16);
    expect(fingerprint(FIXED_KEY).replaceAll('-', '')).not.toBe(plain);
  });

  it('shortens to the first two groups in lower case', () => {
    expect(shortFingerprint(FIXED_KEY)).toBe('wnc4hmxv');
  });
});

describe('parseFingerprint', () => {
  beforeAll(initCrypto);

  it('returns the canonical form of a canonical fingerprint', () => {
    expect(parseFingerprint(FIXED_KEY_FINGERPRINT)).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('accepts lower case', () => {
    expect(parseFingerprint('wnc4-hmxv-eo4h-z5ea')).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('accepts spaces instead of dashes', () => {
    expect(parseFingerprint('WNC4 HMXV EO4H Z5EA')).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('accepts missing dashes', () => {
    expect(parseFingerprint('WNC4HMXVEO4HZ5EA')).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('accepts surrounding whitespace and odd grouping', () => {
    expect(parseFingerprint('  wn c4hm-xveo4hz5 ea\t\n')).toBe(FIXED_KEY_FINGERPRINT);
  });

  it('rejects 15 characters with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => parseFingerprint('WNC4-HMXV-EO4H-Z5E'), 'SALA_E_CONFIG_INVALID');
  });

  it('rejects 17 characters with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => parseFingerprint('WNC4-HMXV-EO4H-Z5EAA'), 'SALA_E_CONFIG_INVALID');
  });

  it('rejects an empty string with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => parseFingerprint(''), 'SALA_E_CONFIG_INVALID');
  });

  it('rejects each digit outside the base32 alphabet (0, 1, 8, 9) with SALA_E_CONFIG_INVALID', () => {
    for (const digit of ['0', '1', '8', '9']) {
      catchSalaError(() => parseFingerprint(`WNC4-HMXV-EO4H-Z5E${digit}`), 'SALA_E_CONFIG_INVALID');
    }
  });

  it('rejects punctuation with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => parseFingerprint('WNC4.HMXV.EO4H.Z5EA'), 'SALA_E_CONFIG_INVALID');
  });

  it('rejects non-ASCII letters with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => parseFingerprint('WNC4-HMXV-EO4H-Z5EÄ'), 'SALA_E_CONFIG_INVALID');
  });

  it('does not echo more than 40 characters of bad input', () => {
    const err = catchSalaError(() => parseFingerprint('Q'.repeat(500)), 'SALA_E_CONFIG_INVALID');
    expect(err.message).not.toContain('Q'.repeat(41));
  });

  it('compares fingerprints typed differently as equal', () => {
    expect(fingerprintsEqual('wnc4 hmxv eo4h z5ea', FIXED_KEY_FINGERPRINT)).toBe(true);
    expect(fingerprintsEqual('WNC4-HMXV-EO4H-Z5EB', FIXED_KEY_FINGERPRINT)).toBe(false);
  });
});

describe('signDetached / verifyDetached', () => {
  beforeAll(initCrypto);

  const DOMAIN = 'sala/v1/test\0';
  const message = Buffer.from('a ticket body');

  it('verifies a signature under the domain it was made for', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    expect(signature.length).toBe(SIGNATURE_BYTES);
    expect(verifyDetached(publicKey, DOMAIN, message, signature)).toBe(true);
  });

  it('rejects a signature made for one domain under another', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, 'sala/v1/ticket\0', message);
    expect(verifyDetached(publicKey, 'sala/v1/login\0', message, signature)).toBe(false);
  });

  it('signs domain || message, not the bare message', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    expect(sodium().crypto_sign_verify_detached(signature, message, publicKey)).toBe(false);
    expect(sodium().crypto_sign_verify_detached(signature, Buffer.concat([Buffer.from(DOMAIN), message]), publicKey)).toBe(true);
  });

  it('rejects a tampered message', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    const tampered = Buffer.from(message);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    expect(verifyDetached(publicKey, DOMAIN, tampered, signature)).toBe(false);
  });

  it('rejects a tampered signature', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = Buffer.from(signDetached(privateKey, DOMAIN, message));
    signature[10] = (signature[10] ?? 0) ^ 0x80;
    expect(verifyDetached(publicKey, DOMAIN, message, signature)).toBe(false);
  });

  it('rejects a signature from another key', () => {
    const signer = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    expect(verifyDetached(other.publicKey, DOMAIN, message, signDetached(signer.privateKey, DOMAIN, message))).toBe(false);
  });

  it('returns false, without throwing, for a signature of the wrong length', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    for (const bad of [new Uint8Array(0), signature.subarray(0, 63), Buffer.concat([signature, Buffer.from([0])])]) {
      expect(verifyDetached(publicKey, DOMAIN, message, bad)).toBe(false);
    }
  });

  it('returns false, without throwing, for a public key of the wrong length', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    expect(verifyDetached(publicKey.subarray(0, 31), DOMAIN, message, signature)).toBe(false);
  });

  it('returns false for a domain that does not end with NUL', () => {
    const { publicKey, privateKey } = generateSigningKeyPair();
    const signature = signDetached(privateKey, DOMAIN, message);
    expect(verifyDetached(publicKey, 'sala/v1/test', message, signature)).toBe(false);
  });

  it('refuses to sign under a domain that does not end with NUL', () => {
    const { privateKey } = generateSigningKeyPair();
    expect(() => signDetached(privateKey, 'sala/v1/test', message)).toThrow(/NUL/);
  });

  it('derives the same key pair from the same seed', () => {
    const seed = randomBytes(32);
    const a = signingKeyPairFromSeed(seed);
    const b = signingKeyPairFromSeed(seed);
    expect(Buffer.from(a.publicKey).equals(Buffer.from(b.publicKey))).toBe(true);
    expect(verifyDetached(b.publicKey, DOMAIN, message, signDetached(a.privateKey, DOMAIN, message))).toBe(true);
  });
});
