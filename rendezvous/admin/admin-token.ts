import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { ensurePrivateDir } from '../../common/index.js';
import { readTextIfExists, tightenToOwnerOnly, writePrivateFile } from '../../common/private-files.js';

/** File name in the server's data dir (CONTRACT.md): one line, the token. */
export const ADMIN_TOKEN_FILE = 'admin.token';

const TOKEN_BYTES = 32;
/** 32 bytes in base64url without padding are 43 characters. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function generateAdminToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * The admin token: read from `admin.token`, or made owner-only on first start. A file that does
 * not hold a well-formed token is replaced: the token is a shared secret between this server and the
 * admin commands run by the same user, who read the file afresh each time.
 */
export function loadOrCreateAdminToken(dataDir: string): string {
  ensurePrivateDir(dataDir);
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = parseTokenFile(readTextIfExists(path));
  if (existing !== undefined) {
    tightenToOwnerOnly(path);
    return existing;
  }
  const token = generateAdminToken();
  writePrivateFile(path, `${token}\n`);
  return token;
}

/** The token in a file's text (its first line), or undefined when the text holds none. */
export function parseTokenFile(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const firstLine = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
  return TOKEN_PATTERN.test(firstLine) ? firstLine : undefined;
}

/**
 * Constant-time token check. Both sides are hashed first so timingSafeEqual always compares 32
 * bytes: neither the comparison nor an early length mismatch tells a caller how long the token is
 * or how much of it they got right.
 */
export function isTokenEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header);
  return match?.[1];
}
