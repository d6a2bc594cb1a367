import { SalaError } from '../errors.js';
import { sodium } from './sodium.js';

/** RFC 4648 base32 alphabet: no 0/1/8/9, so codes read aloud or copied from a projector survive. */
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const FINGERPRINT_DOMAIN = new TextEncoder().encode('sala/v1/fp\0');
/** 16 base32 characters = 80 bits: a 40-bit prefix can be ground on a GPU, 80 bits cannot (SECURITY.md C1). */
export const FINGERPRINT_CHARS = 16;

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The human-comparable form of a public key: base32 of BLAKE2b-256("sala/v1/fp\0" ‖ key), first 16
 * characters, in groups of 4 joined by dashes (`ABCD-EFGH-IJKL-MNOP`). The domain string keeps a
 * fingerprint from ever equalling a hash computed for another purpose.
 */
export function fingerprint(publicKey: Uint8Array): string {
  const digest = sodium().crypto_generichash(32, Buffer.concat([FINGERPRINT_DOMAIN, publicKey]), null);
  const code = base32Encode(digest).slice(0, FINGERPRINT_CHARS);
  return code.match(/.{4}/g)?.join('-') ?? code;
}

/** A short id for log lines (`ab12cd34`-style): the first two groups of the fingerprint, lower-cased. */
export function shortFingerprint(publicKey: Uint8Array): string {
  return fingerprint(publicKey).slice(0, 9).replace('-', '').toLowerCase();
}

/**
 * Reads a fingerprint typed by a person: dashes, spaces and case are ignored. Returns the canonical
 * grouped form or throws SALA_E_CONFIG_INVALID explaining what is wrong.
 */
export function parseFingerprint(input: string): string {
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  if (code.length !== FINGERPRINT_CHARS || ![...code].every((c) => BASE32_ALPHABET.includes(c))) {
    throw new SalaError(
      'SALA_E_CONFIG_INVALID',
      `"${input.slice(0, 40)}" is not a Sala key fingerprint: expected 16 characters A–Z and 2–7, like ABCD-EFGH-IJKL-MNOP.`,
    );
  }
  return code.match(/.{4}/g)?.join('-') ?? code;
}

export function fingerprintsEqual(a: string, b: string): boolean {
  return parseFingerprint(a) === parseFingerprint(b);
}
