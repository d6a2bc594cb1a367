import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
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
 * file holding the owner's pid and host, made complete in one step (a hard link of a finished
 * temporary file) so nobody reads it half-written. A lock whose process is gone (a crash) is taken
 * over — removing exactly the stale file, never one a racing starter has just made; one whose
 * process is alive is refused with the caller's error.
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
    if (createWithContent(this.#path, `${JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() })}\n`)) {
      this.#isHeld = true;
      heldLocks.add(this.#path);
      return;
    }
    const seen = readLock(this.#path);
    const owner = seen === undefined ? undefined : parseOwner(seen);
    if (owner !== undefined && isAlive(owner, this.#path)) throw this.#options.inUse(owner, this.#dataDir, this.#path);
    // A racing starter took it after we judged the old one stale.
    if (!mayTakeOver) throw this.#options.inUse(undefined, this.#dataDir, this.#path);
    // Stale: the process that made it is gone. Remove exactly that file — not one a racing starter
    // has put there since — and retry once (a racing starter may still win; then we are refused).
    if (seen !== undefined) removeIfUnchanged(this.#path, seen);
    this.#take(false);
  }
}

/**
 * Creates `path` with its whole content at once, failing (false) if it exists: the content goes to a
 * private temporary file first, then a hard link makes it appear complete, so a racer never reads a
 * half-written lock and takes it for a stale one. Where hard links are not supported (FAT drives),
 * an exclusive create and a write.
 */
function createWithContent(path: string, content: string): boolean {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(temp, content, { flag: 'wx', mode: 0o600 });
    try {
      linkSync(temp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      if (!isLinkUnsupported(err)) throw err;
    } finally {
      rmSync(temp, { force: true });
    }
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SalaError('SALA_E_DATA_DIR', `Cannot create the lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function isLinkUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EXDEV';
}

/**
 * Removes the stale lock we read, and only it: it is first moved aside under a unique name (a
 * rename moves one file, atomically), then compared with what we read. If a racing starter had
 * replaced it meanwhile, its lock is put back.
 */
function removeIfUnchanged(path: string, seen: string): void {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved or removed it first
  }
  if (readLock(aside) !== seen) {
    try {
      linkSync(aside, path); // a live lock: back where it was (unless yet another starter took the name)
    } catch {
      // the name is taken again: that starter holds the lock
    }
  }
  rmSync(aside, { force: true });
}

function readLock(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function parseOwner(text: string): { pid: number; host: string } | undefined {
  try {
    const parsed = JSON.parse(text) as { pid?: unknown; host?: unknown };
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
