import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN_FILE, bearerToken, generateAdminToken, isTokenEqual, loadOrCreateAdminToken } from '../../../../rendezvous/admin/admin-token.js';
import { tempDataDir } from './helpers.js';

const isPosix = process.platform !== 'win32';

describe('admin token', () => {
  it('is 32 random bytes in base64url', () => {
    const token = generateAdminToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(generateAdminToken()).not.toBe(token);
  });

  it('is written as one line to an owner-only admin.token on first start', () => {
    const dir = tempDataDir();
    const token = loadOrCreateAdminToken(dir);
    expect(readFileSync(join(dir, ADMIN_TOKEN_FILE), 'utf8')).toBe(`${token}\n`);
    if (isPosix) expect(statSync(join(dir, ADMIN_TOKEN_FILE)).mode & 0o777).toBe(0o600);
  });

  it('is reused on the next start', () => {
    const dir = tempDataDir();
    expect(loadOrCreateAdminToken(dir)).toBe(loadOrCreateAdminToken(dir));
  });

  it.runIf(isPosix)('puts a loosened token file back to owner-only', () => {
    const dir = tempDataDir();
    loadOrCreateAdminToken(dir);
    chmodSync(join(dir, ADMIN_TOKEN_FILE), 0o644);
    loadOrCreateAdminToken(dir);
    expect(statSync(join(dir, ADMIN_TOKEN_FILE)).mode & 0o777).toBe(0o600);
  });

  it('replaces a token file that holds no well-formed token', () => {
    const dir = tempDataDir();
    writeFileSync(join(dir, ADMIN_TOKEN_FILE), 'short\n');
    const token = loadOrCreateAdminToken(dir);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('compares equal only for the same token, whatever the lengths', () => {
    const token = generateAdminToken();
    expect(isTokenEqual(token, token)).toBe(true);
    expect(isTokenEqual(token.slice(0, -1), token)).toBe(false);
    expect(isTokenEqual(`${token}x`, token)).toBe(false);
    expect(isTokenEqual('', token)).toBe(false);
  });

  it('reads a Bearer header with any case of the scheme and nothing else', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
