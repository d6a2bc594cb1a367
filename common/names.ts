import { SalaError } from './errors.js';

/** 2–32 characters of a-z, 0-9, `_` and `-`, after NFKC normalisation and lower-casing. */
const USER_NAME_PATTERN = /^[a-z0-9_-]{2,32}$/;

/**
 * The one spelling of a user name that Sala stores and compares. NFKC folds look-alike forms
 * (full-width letters, ligatures) into plain ones before the character check, so `ＡＬＩＣＥ`,
 * `Alice` and `alice` are one account and nobody can register a visual twin of another's name.
 * Anything outside the allowed characters afterwards is refused with SALA_E_INVALID_NAME.
 */
export function normalizeUserName(input: string): string {
  const name = input.normalize('NFKC').toLowerCase();
  if (!USER_NAME_PATTERN.test(name)) {
    throw new SalaError(
      'SALA_E_INVALID_NAME',
      `"${input.slice(0, 40)}" is not a valid user name: use 2 to 32 letters a–z, digits, "_" or "-".`,
    );
  }
  return name;
}

export function isValidUserName(input: string): boolean {
  try {
    normalizeUserName(input);
    return true;
  } catch {
    return false;
  }
}
