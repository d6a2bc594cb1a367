/**
 * The argon2id hash strings we store: libsodium's crypto_pwhash_str format, parsed without loading
 * libsodium (the server's main thread never runs argon2, and needs only the parameters).
 */

/** libsodium's crypto_pwhash_{OPS,MEM}LIMIT_INTERACTIVE for argon2id13 (a unit test checks them). */
export const ARGON2ID_INTERACTIVE = Object.freeze({ opslimit: 2, memlimitBytes: 64 * 1024 * 1024 });

/**
 * verify() refuses (answers false for) stored hashes costlier than this, or than the configured
 * cost if that is higher: a tampered store row with t=10^9 must not wedge a worker for hours.
 * libsodium's MODERATE memory limit and twice its SENSITIVE ops limit.
 */
export const MAX_VERIFY_COST = Object.freeze({ opslimit: 8, memlimitBytes: 256 * 1024 * 1024 });

/** The only hash shape we ever produce: argon2id v1.3, one lane, 16-byte salt, 32-byte hash. */
const ARGON2ID_STRING = /^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;

/** The cost parameters inside a stored hash, or undefined if it is not one of ours. */
export function parseArgon2idHash(hash: unknown): { opslimit: number; memlimitBytes: number } | undefined {
  if (typeof hash !== 'string') return undefined;
  const match = ARGON2ID_STRING.exec(hash);
  if (match === null) return undefined;
  return { memlimitBytes: Number(match[1]) * 1024, opslimit: Number(match[2]) };
}
