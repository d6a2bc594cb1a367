import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadOrCreateIdentity, readIdentity, type Identity } from '../../../../common/crypto/key-store.js';
import { ensurePrivateDir } from '../../../../common/private-files.js';
import { signDetached, verifyDetached } from '../../../../common/crypto/signing.js';
import { initCrypto, sodium } from '../../../../common/crypto/sodium.js';

import { catchSalaError } from '../../../helpers/errors.js';


/** A fresh temporary folder, removed when the test finishes. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sala-key-store-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The key path inside a not-yet-existing private folder, as a program's data dir would be. */
function keyPath(): string {
  return join(tempDir(), 'data', 'identity.json');
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const publicKeys = (identity: Identity): { signing: string; dh: string } => ({
  signing: hex(identity.signing.publicKey),
  dh: hex(identity.dh.publicKey),
});
const modeOf = (path: string): number => statSync(path).mode & 0o777;
const isPosix = process.platform !== 'win32';
const isRoot = process.getuid?.() === 0;

const b64 = (length: number): string => Buffer.alloc(length, 7).toString('base64');
const VALID_FILE = { v: 1, kind: 'sala-identity', signingSeed: b64(32), dhPrivate: b64(32) };

const CORRUPT_FILES: readonly (readonly [string, string | Buffer])[] = [
  ['garbage bytes', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x81])],
  ['an empty file', ''],
  ['truncated JSON', JSON.stringify(VALID_FILE).slice(0, 40)],
  ['JSON null', 'null'],
  ['a JSON array', '[1,2,3]'],
  ['a signing seed of the wrong length', JSON.stringify({ ...VALID_FILE, signingSeed: b64(31) })],
  ['a DH key of the wrong length', JSON.stringify({ ...VALID_FILE, dhPrivate: b64(33) })],
  ['a missing DH key', JSON.stringify({ v: 1, kind: 'sala-identity', signingSeed: b64(32) })],
  ['a numeric key field', JSON.stringify({ ...VALID_FILE, dhPrivate: 5 })],
  ['an unknown version', JSON.stringify({ ...VALID_FILE, v: 2 })],
  ['a version given as a string', JSON.stringify({ ...VALID_FILE, v: '1' })],
  ['another kind of file', JSON.stringify({ ...VALID_FILE, kind: 'ssh-key' })],
];

describe('loadOrCreateIdentity', () => {
  beforeAll(initCrypto);

  it('creates a new identity on the first call', () => {
    const { identity, isNew } = loadOrCreateIdentity(keyPath());
    expect(isNew).toBe(true);
    expect(identity.signing.publicKey).toHaveLength(32);
    expect(identity.dh.publicKey).toHaveLength(32);
  });

  it.runIf(isPosix)('creates the key file with mode 0600', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    expect(modeOf(path)).toBe(0o600);
  });

  it.runIf(isPosix)('creates the key folder with mode 0700', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    expect(modeOf(dirname(path))).toBe(0o700);
  });

  it('leaves only the key file in its folder (no temporary files)', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    expect(readdirSync(dirname(path))).toEqual(['identity.json']);
  });

  it('loads the same keys on the second call', () => {
    const path = keyPath();
    const first = loadOrCreateIdentity(path);
    const second = loadOrCreateIdentity(path);
    expect(second.isNew).toBe(false);
    expect(publicKeys(second.identity)).toEqual(publicKeys(first.identity));
  });

  it('loads the same keys through readIdentity', () => {
    const path = keyPath();
    const { identity } = loadOrCreateIdentity(path);
    expect(publicKeys(readIdentity(path))).toEqual(publicKeys(identity));
  });

  it('creates a different identity at a different path', () => {
    const a = loadOrCreateIdentity(keyPath()).identity;
    const b = loadOrCreateIdentity(keyPath()).identity;
    expect(publicKeys(a)).not.toEqual(publicKeys(b));
  });

  it('creates separate signing and DH keys', () => {
    const { identity } = loadOrCreateIdentity(keyPath());
    expect(hex(identity.signing.publicKey)).not.toBe(hex(identity.dh.publicKey));
  });

  it('restores a loaded signing key that verifies against its public key', () => {
    const path = keyPath();
    const created = loadOrCreateIdentity(path).identity;
    const loaded = loadOrCreateIdentity(path).identity;
    const signature = signDetached(loaded.signing.privateKey, 'sala/v1/test\0', Buffer.from('m'));
    expect(verifyDetached(created.signing.publicKey, 'sala/v1/test\0', Buffer.from('m'), signature)).toBe(true);
  });

  it('restores a loaded DH key whose public key matches its private key', () => {
    const { identity } = loadOrCreateIdentity(keyPath());
    expect(hex(sodium().crypto_scalarmult_base(identity.dh.privateKey))).toBe(hex(identity.dh.publicKey));
  });

  it('stores a versioned file that names its kind', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    const stored = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(stored['v']).toBe(1);
    expect(stored['kind']).toBe('sala-identity');
  });

  it('loads a hand-written valid file', () => {
    const path = keyPath();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(VALID_FILE), { mode: 0o600 });
    const { identity, isNew } = loadOrCreateIdentity(path);
    expect(isNew).toBe(false);
    expect(hex(identity.dh.privateKey)).toBe(hex(Buffer.alloc(32, 7)));
  });

  for (const [what, content] of CORRUPT_FILES) {
    it(`refuses a key file holding ${what} with SALA_E_KEY_UNREADABLE and leaves it unchanged`, () => {
      const path = keyPath();
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content, { mode: 0o600 });
      const before = readFileSync(path);
      catchSalaError(() => loadOrCreateIdentity(path), 'SALA_E_KEY_UNREADABLE');
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(readdirSync(dirname(path))).toEqual(['identity.json']);
    });
  }

  it('keeps the parse error as the cause of SALA_E_KEY_UNREADABLE', () => {
    const path = keyPath();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '{"v":', { mode: 0o600 });
    const err = catchSalaError(() => loadOrCreateIdentity(path), 'SALA_E_KEY_UNREADABLE');
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('refuses a key file it cannot read with SALA_E_KEY_UNREADABLE', () => {
    const path = keyPath();
    mkdirSync(dirname(path), { recursive: true });
    if (isRoot || !isPosix) {
      // chmod 000 does not stop root; a folder at the key path makes the read fail (EISDIR) instead.
      mkdirSync(path);
    } else {
      writeFileSync(path, JSON.stringify(VALID_FILE), { mode: 0o600 });
      chmodSync(path, 0o000);
    }
    catchSalaError(() => loadOrCreateIdentity(path), 'SALA_E_KEY_UNREADABLE');
    expect(statSync(path).isDirectory() || modeOf(path) === 0).toBe(true);
  });

  it('refuses a missing file in readIdentity with SALA_E_KEY_UNREADABLE', () => {
    catchSalaError(() => readIdentity(keyPath()), 'SALA_E_KEY_UNREADABLE');
  });

  it.runIf(isPosix)('tightens a group- and world-readable key file to 0600 when loading it', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    chmodSync(path, 0o644);
    expect(loadOrCreateIdentity(path).isNew).toBe(false);
    expect(modeOf(path)).toBe(0o600);
  });

  it.runIf(isPosix)('tightens a group-writable key file to 0600 when loading it', () => {
    const path = keyPath();
    loadOrCreateIdentity(path);
    chmodSync(path, 0o620);
    loadOrCreateIdentity(path);
    expect(modeOf(path)).toBe(0o600);
  });

  // The key file cannot exist when a folder on its path is a regular file (ENOTDIR): the data
  // folder is what is broken, not an existing key.
  it('reports SALA_E_DATA_DIR when the data folder path runs through a regular file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'data'), 'not a folder');
    catchSalaError(() => loadOrCreateIdentity(join(dir, 'data', 'identity.json')), 'SALA_E_DATA_DIR');
  });
});

describe('ensurePrivateDir', () => {
  it.runIf(isPosix)('creates a missing folder with mode 0700', () => {
    const dir = join(tempDir(), 'new');
    ensurePrivateDir(dir);
    expect(modeOf(dir)).toBe(0o700);
  });

  it.runIf(isPosix)('leaves the mode of a folder that already exists as it is', () => {
    // --data may name a folder the user shares with other programs.
    const dir = join(tempDir(), 'existing');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    ensurePrivateDir(dir);
    expect(modeOf(dir)).toBe(0o755);
  });

  it('creates missing parent folders', () => {
    const dir = join(tempDir(), 'a', 'b', 'c');
    ensurePrivateDir(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it('fails with SALA_E_DATA_DIR when a regular file is in the way', () => {
    const base = tempDir();
    writeFileSync(join(base, 'file'), '');
    catchSalaError(() => ensurePrivateDir(join(base, 'file', 'sub')), 'SALA_E_DATA_DIR');
  });
});

describe('loadOrCreateIdentity across processes', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = join(here, '..', '..', '..', '..');
  const distKeyStore = join(root, 'dist', 'common', 'crypto', 'key-store.js');
  const distSodium = join(root, 'dist', 'common', 'crypto', 'sodium.js');
  const DEADLINE_MS = 20_000;

  beforeAll(async () => {
    await initCrypto();
    let builtAtMs: number;
    try {
      builtAtMs = statSync(distKeyStore).mtimeMs;
    } catch {
      throw new Error(`${distKeyStore} is missing: run \`npm run build\` (npm test does) before this file.`);
    }
    const sources = ['crypto/key-store.ts', 'crypto/signing.ts', 'crypto/sodium.ts', 'crypto/noise/handshake-state.ts', 'wire/schema.ts'];
    for (const source of sources.map((s) => join(root, 'common', s))) {
      if (statSync(source).mtimeMs > builtAtMs) {
        throw new Error(`${source} is newer than dist/: run \`npm run build\` (npm test does) before this file.`);
      }
    }
  });

  // Each child loads libsodium, says "ready", and waits for a line on stdin, so that all of them
  // call loadOrCreateIdentity at the same moment.
  const CHILD_SOURCE = `
    const { initCrypto } = await import(process.argv[1]);
    const { loadOrCreateIdentity } = await import(process.argv[2]);
    await initCrypto();
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      const { identity, isNew } = loadOrCreateIdentity(process.argv[3]);
      const hex = (b) => Buffer.from(b).toString('hex');
      process.stdout.write(JSON.stringify({ isNew, signing: hex(identity.signing.publicKey), dh: hex(identity.dh.publicKey) }) + '\\n');

    });
  `;

  interface ChildResult {
    isNew: boolean;
    signing: string;
    dh: string;
  }

  function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
    const signal = AbortSignal.timeout(DEADLINE_MS);
    return Promise.race([
      promise,
      once(signal, 'abort').then(() => {
        throw new Error(`${what} did not happen within ${DEADLINE_MS} ms`);
      }),
    ]);
  }

  function startChild(path: string): { child: ChildProcess; lines: AsyncIterator<string>; stderr: () => string } {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', CHILD_SOURCE, pathToFileURL(distSodium).href, pathToFileURL(distKeyStore).href, path],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    if (child.stdout === null) throw new Error('child has no stdout');
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return { child, lines, stderr: () => stderr };
  }

  async function nextLine(lines: AsyncIterator<string>, what: string, stderr: () => string): Promise<string> {
    const result = await withDeadline(lines.next(), what);
    if (result.done === true) throw new Error(`child ended before ${what}: ${stderr()}`);
    return result.value;
  }

  it('gives four processes creating the same identity at once the same keys, exactly one of them new', async () => {
    const path = keyPath();
    const children = Array.from({ length: 4 }, () => startChild(path));
    for (const c of children) expect(await nextLine(c.lines, 'child ready', c.stderr)).toBe('ready');
    for (const c of children) c.child.stdin?.end('go\n');
    const results: ChildResult[] = [];
    for (const c of children) results.push(JSON.parse(await nextLine(c.lines, 'child result', c.stderr)) as ChildResult);
    await Promise.all(children.map((c) => (c.child.exitCode === null ? withDeadline(once(c.child, 'exit'), 'child exit') : undefined)));

    const first = results[0];
    expect(first).toBeDefined();
    for (const r of results) expect({ signing: r.signing, dh: r.dh }).toEqual({ signing: first?.signing, dh: first?.dh });
    expect(results.filter((r) => r.isNew)).toHaveLength(1);
    expect(publicKeys(loadOrCreateIdentity(path).identity)).toEqual({ signing: first?.signing, dh: first?.dh });
    expect(readdirSync(dirname(path))).toEqual(['identity.json']);
  });
});
