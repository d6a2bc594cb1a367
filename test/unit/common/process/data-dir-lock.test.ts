/**
 * The data-dir lock against real processes racing for it: several starters at once, with and
 * without a stale lock left by a crash, must end with exactly one holder. Each racer is a real
 * `node` process using the compiled lock (dist/, built by `npm test`).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DataDirLock, SalaError } from '../../../../common/index.js';
import { tempDir } from '../../../helpers/rendezvous.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const LOCK_MODULE = pathToFileURL(join(ROOT, 'dist', 'common', 'process', 'data-dir-lock.js')).href;
const RACERS = 6;
const OPTIONS = { fileName: 'test.lock', inUse: () => new SalaError('SALA_E_SERVER_RUNNING', 'in use') };

/** A process that waits for `startAt`, tries the lock, holds it a while, and prints what happened. */
function racer(dir: string, startAt: number): Promise<string> {
  const script = `
    const { DataDirLock } = await import(${JSON.stringify(LOCK_MODULE)});
    while (Date.now() < ${startAt}) {}
    let result;
    try {
      const lock = DataDirLock.acquire(${JSON.stringify(dir)}, { fileName: 'test.lock', inUse: () => Object.assign(new Error('in use'), { code: 'SALA_E_SERVER_RUNNING' }) });
      result = 'held';
      await new Promise((r) => setTimeout(r, 600));
      lock.release();
    } catch (err) {
      result = err.code ?? String(err);
    }
    process.stdout.write(result);
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

async function race(dir: string): Promise<string[]> {
  const startAt = Date.now() + 1_500; // every racer loaded and spinning by then
  return Promise.all(Array.from({ length: RACERS }, () => racer(dir, startAt)));
}

describe('DataDirLock', () => {
  it.runIf(existsSync(join(ROOT, 'dist', 'common', 'process', 'data-dir-lock.js')))('gives the lock to exactly one of several starters, with or without a stale lock to take over', async () => {
    for (const isStale of [false, true, true]) {
      const dir = tempDir();
      // A lock left by a crashed process: a pid that is not running (pid_max is below 2^22 on Linux).
      if (isStale) writeFileSync(join(dir, 'test.lock'), JSON.stringify({ pid: 4_194_303, host: hostname(), startedAt: 'then' }));
      const results = await race(dir);
      expect(results.filter((r) => r === 'held'), results.join(',')).toHaveLength(1);
      expect(results.filter((r) => r !== 'held').every((r) => r === 'SALA_E_SERVER_RUNNING')).toBe(true);
      // Nothing left behind: no temporary or moved-aside files, and the lock is released.
      expect(readdirSync(dir)).toEqual([]);
    }
  }, 60_000);

  it('refuses a second holder in the same process and takes the lock again after release', () => {
    const dir = tempDir();
    const lock = DataDirLock.acquire(dir, OPTIONS);
    expect(() => DataDirLock.acquire(dir, OPTIONS)).toThrow(expect.objectContaining({ code: 'SALA_E_SERVER_RUNNING' }));
    lock.release();
    DataDirLock.acquire(dir, OPTIONS).release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes over a lock whose content is half-written garbage', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'test.lock'), '{"pid": 12');
    const lock = DataDirLock.acquire(dir, OPTIONS);
    lock.release();
  });
});
