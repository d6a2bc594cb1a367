import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { SalaError } from '../errors.js';
import { isPlainObject } from '../wire/schema.js';
import type { KeyPair } from './noise/handshake-state.js';
import { generateX25519KeyPair, x25519KeyPairFromPrivate } from './noise/handshake-state.js';
import { generateSigningKeyPair, signingKeyPairFromSeed } from './signing.js';
import { sodium } from './sodium.js';

/**
 * A long-term identity: an Ed25519 key that signs (tickets, login proofs, group datagrams) and a
 * separate X25519 key that is the Noise static key. Keeping them apart means the Noise key is only
 * ever used inside Noise (§14) and the signing key only ever signs.
 */
export interface Identity {
  readonly signing: KeyPair;
  readonly dh: KeyPair;
}

const FILE_VERSION = 1;

export function generateIdentity(): Identity {
  return { signing: generateSigningKeyPair(), dh: generateX25519KeyPair() };
}

/**
 * Makes sure `dir` exists. A folder Sala creates is made owner-only (0700; on Windows an ACL with
 * inheritance removed). A folder that already existed is left as it is — `--data` may point at a
 * folder the user shares with other programs — and the key files in it are restricted one by one.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created === undefined) return;
    if (process.platform === 'win32') restrictWindowsAcl(dir, 'folder');
    else chmodSync(dir, 0o700);
  } catch (err) {
    if (err instanceof SalaError) throw err;
    throw new SalaError('SALA_E_DATA_DIR', `Cannot create the private folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * chmod on Windows only toggles read-only, so the ACL is replaced: inheritance removed and full
 * control for the current user alone (SECURITY.md, M). The user is named by SID (domain and Azure AD
 * accounts resolve reliably that way), and both tools are run by full path so that an icacls.exe in
 * the current folder can never be run instead. A failure is reported with icacls' own words.
 */
function restrictWindowsAcl(target: string, kind: 'folder' | 'file'): void {
  const system32 = join(process.env['SystemRoot'] ?? 'C:\\Windows', 'System32');
  const grant = kind === 'folder' ? '(OI)(CI)F' : 'F';
  const who = currentWindowsAccount(system32);
  try {
    execFileSync(join(system32, 'icacls.exe'), [target, '/inheritance:r', '/grant:r', `${who}:${grant}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
  } catch (err) {
    const detail = (err as { stderr?: Buffer; stdout?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new SalaError('SALA_E_DATA_DIR', `Cannot restrict ${target} to ${who} (icacls: ${detail}).`, { cause: err });
  }
}

/** `*S-1-5-…` for the current user (from whoami), or the plain user name if whoami is unavailable. */
function currentWindowsAccount(system32: string): string {
  try {
    const csv = execFileSync(join(system32, 'whoami.exe'), ['/user', '/fo', 'csv', '/nh'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      windowsHide: true,
    }).toString();
    const sid = /"(S-1-[0-9-]+)"/.exec(csv)?.[1];
    if (sid !== undefined) return `*${sid}`;
  } catch {
    // fall through to the user name
  }
  return userInfo().username;
}

/**
 * Loads the identity at `path`, or creates it when no file exists. A file that exists but cannot be
 * read or parsed is never replaced (that would silently change who this device or server is): it
 * fails with SALA_E_KEY_UNREADABLE. Creation is atomic and race-free: the key is written to a
 * temporary file, flushed, then hard-linked into place, so two first starts agree on one key.
 */
export function loadOrCreateIdentity(path: string): { identity: Identity; isNew: boolean } {
  const existing = tryReadIdentity(path);
  if (existing !== undefined) return { identity: existing, isNew: false };
  ensurePrivateDir(dirname(path));
  const identity = generateIdentity();
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, serializeIdentity(identity));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (process.platform === 'win32') restrictWindowsAcl(temp, 'file');
  try {
    linkSync(temp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      unlinkSync(temp);
      return { identity: readIdentity(path), isNew: false };
    }
    // File systems without hard links (FAT on a USB stick): fall back to a plain rename.
    renameSync(temp, path);
    return { identity, isNew: true };
  }
  unlinkSync(temp);
  return { identity, isNew: true };
}

function tryReadIdentity(path: string): Identity | undefined {
  try {
    statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') {
      throw new SalaError('SALA_E_DATA_DIR', `The data folder for ${path} runs through a file, not a folder; choose another --data folder.`, { cause: err });
    }
    throw unreadable(path, err);
  }
  return readIdentity(path);
}

export function readIdentity(path: string): Identity {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch (err) {
    throw unreadable(path, err);
  }
  try {
    return parseIdentity(JSON.parse(text) as unknown);
  } catch (err) {
    throw unreadable(path, err);
  }
}

function unreadable(path: string, cause: unknown): SalaError {
  return new SalaError(
    'SALA_E_KEY_UNREADABLE',
    `The key file ${path} exists but cannot be read. Sala will not replace it, because that would change ` +
      'this identity; restore it from a backup, or delete it on purpose to make a new identity.',
    { cause },
  );
}

function serializeIdentity(identity: Identity): string {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
  return `${JSON.stringify({
    v: FILE_VERSION,
    kind: 'sala-identity',
    signingSeed: b64(sodium().crypto_sign_ed25519_sk_to_seed(identity.signing.privateKey)),
    dhPrivate: b64(identity.dh.privateKey),
  })}\n`;
}

function parseIdentity(value: unknown): Identity {
  if (!isPlainObject(value) || value['v'] !== FILE_VERSION || value['kind'] !== 'sala-identity') {
    throw new Error('not a Sala identity file of a known version');
  }
  const seed = decode32(value['signingSeed']);
  const dhPrivate = decode32(value['dhPrivate']);
  return { signing: signingKeyPairFromSeed(seed), dh: x25519KeyPairFromPrivate(dhPrivate) };
}

function decode32(value: unknown): Uint8Array {
  if (typeof value !== 'string') throw new Error('key field missing');
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== 32) throw new Error('key field has the wrong length');
  return new Uint8Array(bytes);
}
