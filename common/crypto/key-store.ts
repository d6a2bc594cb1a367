import { chmodSync, linkSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { SalaError } from '../errors.js';
import { ensurePrivateDir, writePrivateTemp } from '../private-files.js';
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
  const temp = writePrivateTemp(path, serializeIdentity(identity));
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
