import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SalaError } from '../errors.js';

/** Lock files this process holds: its own pid in a lock file is proof of life only for these. */
const heldLocks = new Set<string>();

export interface DataDirLockOptions {
  /** The lock file's name in the data dir (`server.lock`, `peer-alice.lock`). */
  fileName: string;
  /** The error for a lock held by a live process (SALA_E_SERVER_RUNNING, SALA_E_PEER_RUNNING). */
  inUse: (owner: { pid: number } | undefined, dataDir: string, lockPath: string) => SalaError;
}

/**
 * One process per data dir (and role): NeDB must never be written by two processes. The lock is a
 * file made with O_EXCL holding the owner's pid and host. A lock whose process is gone (a crash) is
 * taken over; one whose process is alive is refused with the caller's error.
 */
export class DataDirLock {
  readonly #path: string;
  readonly #dataDir: string;
  readonly #options: DataDirLockOptions;
  #isHeld = false;

  private constructor(dataDir: string, options: DataDirLockOptions) {
    this.#dataDir = dataDir;
    this.#options = options;
    this.#path = join(dataDir, options.fileName);
  }

  static acquire(dataDir: string, options: DataDirLockOptions): DataDirLock {
    const lock = new DataDirLock(dataDir, options);
    lock.#take(true);
    return lock;
  }

  release(): void {
    if (!this.#isHeld) return;
    this.#isHeld = false;
    heldLocks.delete(this.#path);
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }

  #take(mayTakeOver: boolean): void {
    try {
      const fd = openSync(this.#path, 'wx', 0o600);
      try {
        writeSync(fd, `${JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() })}\n`);
      } finally {
        closeSync(fd);
      }
      this.#isHeld = true;
      heldLocks.add(this.#path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SalaError('SALA_E_DATA_DIR', `Cannot create the lock file ${this.#path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const owner = readOwner(this.#path);
    if (owner !== undefined && isAlive(owner, this.#path)) throw this.#options.inUse(owner, this.#dataDir, this.#path);
    // A racing starter took it between our unlink and our retry.
    if (!mayTakeOver) throw this.#options.inUse(undefined, this.#dataDir, this.#path);
    // Stale: the server that made it is gone. Remove and retry once (a racing starter may win).
    try {
      unlinkSync(this.#path);
    } catch {
      // someone else removed it first
    }
    this.#take(false);
  }
}

function readOwner(path: string): { pid: number; host: string } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown; host?: unknown };
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') return { pid: parsed.pid, host: parsed.host };
  } catch {
    // unreadable or half-written: treated as stale
  }
  return undefined;
}

/**
 * A lock from another host (a data dir on a network share) is trusted as alive: we cannot check it.
 * Our own pid counts as alive only if this process holds that lock: Windows hands out low pids again
 * quickly, so a killed server's pid is often the new server's own.
 */
function isAlive(owner: { pid: number; host: string }, path: string): boolean {
  if (owner.host !== hostname()) return true;
  if (owner.pid === process.pid) return heldLocks.has(path);
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
