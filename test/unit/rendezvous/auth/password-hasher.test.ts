import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { initCrypto, sodium } from '../../../../common/crypto/sodium.js';
import { SalaError } from '../../../../common/errors.js';
import { ARGON2ID_INTERACTIVE, parseArgon2idHash } from '../../../../rendezvous/auth/password-hash-format.js';
import {
  PASSWORD_HASHER_TEST_HOOKS,
  PasswordHasher,
  resolvePasswordWorkerUrl,
  type PasswordHasherOptions,
} from '../../../../rendezvous/auth/password-hasher.js';
import { passwordWorkerUrl } from './password-worker-fixture.js';

/** Cheap argon2id so the tests run in milliseconds; one test below uses the real defaults. */
const FAST = { opslimit: 1, memlimitBytes: 8 * 1024 } as const;
/** Slow enough (tens of ms) that a test can act while a job is still running. */
const SLOW = { opslimit: 3, memlimitBytes: 32 * 1024 * 1024 } as const;

function makeHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const hasher = new PasswordHasher({ workerUrl: passwordWorkerUrl(), ...FAST, ...options });
  onTestFinished(() => hasher.close());
  return hasher;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SalaError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}

function temporaryDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sala-hasher-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('PasswordHasher', () => {
  it('hashes a password into an argon2id string that verifies', async () => {
    const hasher = makeHasher();
    const hash = await hasher.hash('correct horse battery');
    expect(parseArgon2idHash(hash)).toEqual({ opslimit: 1, memlimitBytes: 8 * 1024 });
    expect(await hasher.verify(hash, 'correct horse battery')).toBe(true);
  });

  it('salts every hash, so one password hashes differently twice', async () => {
    const hasher = makeHasher();
    const [a, b] = await Promise.all([hasher.hash('same password'), hasher.hash('same password')]);
    expect(a).not.toBe(b);
  });

  it('answers false for a wrong password', async () => {
    const hasher = makeHasher();
    const hash = await hasher.hash('correct horse battery');
    expect(await hasher.verify(hash, 'correct horse batterY')).toBe(false);
    expect(await hasher.verify(hash, '')).toBe(false);
  });

  it('answers false for malformed stored hashes and keeps working', async () => {
    const hasher = makeHasher();
    const good = await hasher.hash('correct horse battery');
    const salt = good.split('$')[4] ?? '';
    const bad: unknown[] = [
      '',
      'not a hash',
      good.slice(0, -1),
      `${good}A`,
      good.replace('$argon2id$', '$argon2i$'),
      good.replace('v=19', 'v=16'),
      good.replace(',p=1$', ',p=4$'),
      `$argon2id$v=19$m=8,t=1,p=1$${salt}$${'A'.repeat(43)}`,
      '\0'.repeat(200),
      undefined,
      42,
    ];
    for (const hash of bad) expect(await hasher.verify(hash as string, 'correct horse battery')).toBe(false);
    expect(await hasher.verify(good, 'correct horse battery')).toBe(true);
  });

  it('answers false for a stored hash whose cost parameters would wedge a worker', async () => {
    const hasher = makeHasher();
    const good = await hasher.hash('correct horse battery');
    expect(await hasher.verify(good.replace('t=1,', 't=1000000000,'), 'correct horse battery')).toBe(false);
    expect(await hasher.verify(good.replace('m=8,', 'm=4194304,'), 'correct horse battery')).toBe(false);
  });

  it('treats the NFC and NFD spellings of a password as the same password', async () => {
    const hasher = makeHasher();
    const hash = await hasher.hash('caf\u00e9 cr\u00e8me');
    expect(await hasher.verify(hash, 'cafe\u0301 cre\u0300me')).toBe(true);
  });

  it('refuses to hash a password over 1,024 bytes with SALA_E_PASSWORD_REJECTED', async () => {
    const hasher = makeHasher();
    const long = 'x'.repeat(1_025);
    await expect(codeOf(hasher.hash(long))).resolves.toBe('SALA_E_PASSWORD_REJECTED');
    await expect(hasher.hash(long)).rejects.not.toThrow(long);
    expect(parseArgon2idHash(await hasher.hash('x'.repeat(1_024)))).toBeDefined();
  });

  it('answers false for a password over 1,024 bytes, after a full verify like any other', async () => {
    const hasher = makeHasher({ workers: 1, maxQueue: 0 });
    const hash = await hasher.hash('x'.repeat(1_024));
    const tooLong = hasher.verify(hash, 'x'.repeat(1_025));
    // The verify occupies the only worker, so it costs what a wrong password costs.
    await expect(codeOf(hasher.hash('another password'))).resolves.toBe('SALA_E_BUSY');
    expect(await tooLong).toBe(false);
    expect(await hasher.verify(hash, 'x'.repeat(100_000))).toBe(false);
  });

  it('uses and verifies libsodium interactive argon2id parameters (64 MiB) by default', async () => {
    await initCrypto();
    expect(ARGON2ID_INTERACTIVE).toEqual({
      opslimit: sodium().crypto_pwhash_OPSLIMIT_INTERACTIVE,
      memlimitBytes: sodium().crypto_pwhash_MEMLIMIT_INTERACTIVE,
    });
    const hasher = new PasswordHasher({ workerUrl: passwordWorkerUrl() });
    onTestFinished(() => hasher.close());
    const hash = await hasher.hash('correct horse battery');
    expect(parseArgon2idHash(hash)).toEqual({ opslimit: 2, memlimitBytes: 64 * 1024 * 1024 });
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(await hasher.verify(hash, 'correct horse battery')).toBe(true);
    expect(await hasher.verify(hash, 'wrong horse battery')).toBe(false);
  });

  it('says a hash needs rehashing when its parameters differ or it is not ours', async () => {
    const hasher = makeHasher();
    const hash = await hasher.hash('correct horse battery');
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(makeHasher({ opslimit: 2 }).needsRehash(hash)).toBe(true);
    expect(makeHasher({ memlimitBytes: 16 * 1024 }).needsRehash(hash)).toBe(true);
    expect(hasher.needsRehash('garbage')).toBe(true);
  });

  it('rejects with SALA_E_BUSY at once when the workers and the queue of 16 are full', async () => {
    const hasher = makeHasher();
    const settled: string[] = [];
    const accepted = Array.from({ length: 2 + 16 }, (_, i) =>
      hasher.hash(`password ${i}`).finally(() => settled.push(`job ${i}`)),
    );
    const refused = hasher.hash('one too many').catch((err: unknown) => {
      settled.push('refused');
      throw err;
    });
    await expect(codeOf(refused)).resolves.toBe('SALA_E_BUSY');
    expect(settled).toEqual(['refused']);
    const hashes = await Promise.all(accepted);
    expect(hashes.every((hash) => parseArgon2idHash(hash) !== undefined)).toBe(true);
    // Once drained, the pool takes work again.
    expect(parseArgon2idHash(await hasher.hash('after the rush'))).toBeDefined();
  });

  it('honours a smaller maxQueue', async () => {
    const hasher = makeHasher({ workers: 1, maxQueue: 0 });
    const running = hasher.hash('first password');
    await expect(codeOf(hasher.hash('second password'))).resolves.toBe('SALA_E_BUSY');
    await expect(running).resolves.toMatch(/^\$argon2id\$/);
  });

  it('rejects running and queued jobs with SALA_E_BUSY on close, and every later call', async () => {
    const hasher = makeHasher();
    const jobs = Array.from({ length: 6 }, (_, i) => codeOf(hasher.hash(`password ${i}`)));
    const closing = hasher.close();
    expect(hasher.close()).toBe(closing);
    await closing;
    expect(await Promise.all(jobs)).toEqual(Array(6).fill('SALA_E_BUSY'));
    await expect(codeOf(hasher.hash('too late'))).resolves.toBe('SALA_E_BUSY');
    await expect(codeOf(hasher.verify('$argon2id$', 'too late'))).resolves.toBe('SALA_E_BUSY');
    await hasher.close();
  });

  it('rejects the job of a worker that dies and replaces the worker', async () => {
    const hasher = makeHasher({ ...SLOW, workers: 1 });
    await hasher.hash('warm the worker up');
    const hooks = hasher[PASSWORD_HASHER_TEST_HOOKS]();
    const [before] = hooks.threadIds();
    const doomed = codeOf(hasher.hash('this one dies'));
    const queued = hasher.hash('this one waits');
    await hooks.killWorker(0);
    await expect(doomed).resolves.toBe('SALA_E_BUSY');
    await expect(queued).resolves.toMatch(/^\$argon2id\$/);
    const [after] = hooks.threadIds();
    expect(after).not.toBe(before);
    expect(after).toBeGreaterThan(0);
  });

  it('rejects with SALA_E_BUSY a job that runs past jobTimeoutMs', async () => {
    const hasher = makeHasher({ ...SLOW, workers: 1, jobTimeoutMs: 1 });
    await expect(codeOf(hasher.hash('takes too long'))).resolves.toBe('SALA_E_BUSY');
  });

  it('rejects jobs with SALA_E_BUSY instead of hanging when the worker cannot start', async () => {
    const dir = temporaryDir();
    writeFileSync(join(dir, 'broken-worker.mjs'), "throw new Error('no libsodium here');\n");
    const hasher = makeHasher({ workers: 1, workerUrl: pathToFileURL(join(dir, 'broken-worker.mjs')) });
    const jobs = [hasher.hash('first password'), hasher.hash('second password')].map(codeOf);
    expect(await Promise.all(jobs)).toEqual(['SALA_E_BUSY', 'SALA_E_BUSY']);
  });

  it('answers initialEstimateMs before any job, then the median of measured durations', async () => {
    expect(makeHasher().estimateMs()).toBe(250);
    const hasher = makeHasher({ memlimitBytes: 4 * 1024 * 1024, initialEstimateMs: 0 });
    expect(hasher.estimateMs()).toBe(0);
    const hash = await hasher.hash('correct horse battery');
    const afterOne = hasher.estimateMs();
    expect(afterOne).toBeGreaterThan(0);
    for (let i = 0; i < 4; i += 1) await hasher.verify(hash, `guess ${i}`);
    expect(hasher.estimateMs()).toBeGreaterThan(0);
    expect(hasher.estimateMs()).toBeLessThan(10_000);
  });

  it('names the bad option with SALA_E_CONFIG_INVALID', () => {
    const attempts: [PasswordHasherOptions, string][] = [
      [{ workers: 0 }, 'workers'],
      [{ workers: 1.5 }, 'workers'],
      [{ maxQueue: -1 }, 'maxQueue'],
      [{ opslimit: 0 }, 'opslimit'],
      [{ memlimitBytes: 4096 }, 'memlimitBytes'],
      [{ memlimitBytes: 10_000 }, 'memlimitBytes'],
      [{ jobTimeoutMs: 0 }, 'jobTimeoutMs'],
    ];
    for (const [options, name] of attempts) {
      let caught: unknown;
      try {
        makeHasher(options);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SalaError);
      expect((caught as SalaError).code).toBe('SALA_E_CONFIG_INVALID');
      expect((caught as SalaError).message).toContain(`"${name}"`);
    }
  });
});

describe('resolvePasswordWorkerUrl', () => {
  it('prefers the compiled worker next to the module', () => {
    const root = temporaryDir();
    mkdirSync(join(root, 'dist/rendezvous/auth'), { recursive: true });
    writeFileSync(join(root, 'dist/rendezvous/auth/password-worker.js'), '');
    const moduleUrl = pathToFileURL(join(root, 'dist/rendezvous/auth/password-hasher.js'));
    expect(resolvePasswordWorkerUrl(moduleUrl).href).toBe(pathToFileURL(join(root, 'dist/rendezvous/auth/password-worker.js')).href);
  });

  it('falls back to dist/ when running the TypeScript sources', () => {
    const root = temporaryDir();
    mkdirSync(join(root, 'rendezvous/auth'), { recursive: true });
    mkdirSync(join(root, 'dist/rendezvous/auth'), { recursive: true });
    writeFileSync(join(root, 'dist/rendezvous/auth/password-worker.js'), '');
    const moduleUrl = pathToFileURL(join(root, 'rendezvous/auth/password-hasher.ts'));
    expect(resolvePasswordWorkerUrl(moduleUrl).href).toBe(pathToFileURL(join(root, 'dist/rendezvous/auth/password-worker.js')).href);
  });

  it('tells the developer to run npm run build when no compiled worker exists', () => {
    const root = temporaryDir();
    const moduleUrl = pathToFileURL(join(root, 'rendezvous/auth/password-hasher.ts'));
    expect(() => resolvePasswordWorkerUrl(moduleUrl)).toThrow(/npm run build/);
    try {
      resolvePasswordWorkerUrl(moduleUrl);
    } catch (err) {
      expect((err as SalaError).code).toBe('SALA_E_CONFIG_INVALID');
    }
  });
});
