import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SalaError } from '../common/index.js';

const LOCK_FILE = 'server.lock';
/** Lock files this process holds: its own pid in a lock file is proof of life only for these. */
const heldLocks = new Set<string>();

/**
 * One server per data dir: NeDB must never be written by two processes. The lock is a file made
 * with O_EXCL holding the owner's pid and host. A lock whose process is gone (a crashed server) is
 * taken over; one whose process is alive is refused with SALA_E_SERVER_RUNNING.
 */
export class DataDirLock {
  readonly #path: string;
  #isHeld = false;

  private constructor(path: string) {
    this.#path = path;
  }

  static acquire(dataDir: string): DataDirLock {
    const lock = new DataDirLock(join(dataDir, LOCK_FILE));
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
    if (owner !== undefined && isAlive(owner, this.#path)) {
      throw new SalaError(
        'SALA_E_SERVER_RUNNING',
        `Another Sala server (pid ${owner.pid}) is already running with the data directory ${this.#path.slice(0, -LOCK_FILE.length - 1)}. ` +
          `Stop it first, or start this one with a different --data folder. If no Sala server is running, delete ${this.#path}.`,
      );
    }
    if (!mayTakeOver) throw new SalaError('SALA_E_SERVER_RUNNING', 'Another server took the data directory at the same moment.');
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
