/**
 * What a new password must satisfy, and the one normal form every password is hashed in.
 *
 * Passwords are compared after Unicode NFC so that "é" typed as one code point or as "e" plus a
 * combining accent is the same password on every keyboard and OS. The limits follow NIST SP 800-63B
 * §5.1.1.2: at least 8 characters, no composition rules, and a generous maximum (argon2 pre-hashes
 * the input, so length costs nothing; the cap only bounds what we accept off the wire).
 */
import { SalaError } from '../../common/errors.js';

/** Belongs in common/config/defaults.ts; kept here until that file can take it. */
export const PASSWORD_LIMITS = Object.freeze({
  /** Unicode code points after NFC. */
  minChars: 8,
  /** UTF-8 bytes after NFC. */
  maxBytes: 1_024,
});

/**
 * NFC shrinks UTF-8 by at most a factor of three (Hangul jamo L+V+T → one syllable: 9 → 3 bytes),
 * and a UTF-16 unit is at least one UTF-8 byte. So a raw string longer than this cannot fit in
 * maxBytes after NFC and is refused before we spend time normalising it.
 */
const MAX_RAW_UTF16_UNITS = 4 * PASSWORD_LIMITS.maxBytes;

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The bytes that get hashed: NFC, UTF-8. Returns undefined when the password is over
 * PASSWORD_LIMITS.maxBytes (no stored hash can match such a password, since hash() refuses it).
 */
export function passwordBytes(password: string): Uint8Array<ArrayBuffer> | undefined {
  if (password.length > MAX_RAW_UTF16_UNITS) return undefined;
  const bytes = new TextEncoder().encode(password.normalize('NFC'));
  return bytes.byteLength > PASSWORD_LIMITS.maxBytes ? undefined : bytes;
}

/**
 * Throws SALA_E_PASSWORD_REJECTED unless `password` may become an account's new password: at least
 * 8 code points after NFC, at most 1,024 UTF-8 bytes after NFC, and no unpaired UTF-16 surrogate
 * (it would be encoded as U+FFFD and so collide with other passwords). The message never quotes the password
 * or its length.
 */
export function validateNewPassword(password: string): void {
  if (typeof password !== 'string') {
    throw new SalaError('SALA_E_PASSWORD_REJECTED', 'The new password must be text.');
  }
  if (passwordBytes(password) === undefined) {
    throw new SalaError(
      'SALA_E_PASSWORD_REJECTED',
      `The new password is too long: use at most ${PASSWORD_LIMITS.maxBytes} bytes (about as many plain letters).`,
    );
  }
  if (LONE_SURROGATE.test(password)) {
    throw new SalaError('SALA_E_PASSWORD_REJECTED', 'The new password contains an invalid character; type it again.');
  }
  let codePoints = 0;
  for (const _ of password.normalize('NFC')) {
    codePoints += 1;
    if (codePoints >= PASSWORD_LIMITS.minChars) return;
  }
  throw new SalaError(
    'SALA_E_PASSWORD_REJECTED',
    `The new password is too short: use at least ${PASSWORD_LIMITS.minChars} characters.`,
  );
}
