import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { SalaError } from './errors.js';

/**
 * Owner-only files and folders, the one place that knows how on each OS: POSIX modes 0700/0600, and
 * on Windows (where chmod only toggles read-only) an ACL granting the current user alone.
 */

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
 * Writes `content` to a new temporary file beside `path` (created exclusively, mode 0600, flushed,
 * and on Windows restricted by ACL) and returns its name, for the caller to rename or link into place.
 */
export function writePrivateTemp(path: string, content: string): string {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (process.platform === 'win32') restrictWindowsAcl(temp, 'file');
  return temp;
}

/**
 * Secrets and state in a data dir (keys, the admin token and TLS key, revocations, queues). They
 * are written owner-only (0600) and atomically — a temporary file, flushed, then renamed into
 * place — so an admin command reading them while the server starts never sees half a file.
 *
 * On Windows, where the mode only toggles read-only, the file's own ACL is restricted too.
 */
export function writePrivateFile(path: string, content: string): void {
  let temp: string | undefined;
  try {
    temp = writePrivateTemp(path, content);
    renameSync(temp, path);
  } catch (err) {
    if (err instanceof SalaError) throw err;
    try {
      if (temp !== undefined) unlinkSync(temp);
    } catch {
      // the temporary file was never made, or is already renamed
    }
    throw new SalaError('SALA_E_DATA_DIR', `Cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * writePrivateFile without blocking the event loop: the write and its fsync run on libuv's thread
 * pool. An fsync can take hundreds of milliseconds when the file system has other dirty data to
 * commit first (a file just received), which would freeze chat if done on the loop. For files in a
 * folder made by ensurePrivateDir only: on Windows they inherit its restricted ACL, so no per-file
 * icacls runs (which would spawn a process per write).
 */
export async function writePrivateFileAsync(path: string, content: string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw new SalaError('SALA_E_DATA_DIR', `Cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Saves a small state file in the background, in order, coalescing bursts: while one write is under
 * way, further requests collapse into one more write of the latest content. Errors go to `onError`.
 */
export class BackgroundFileWriter {
  readonly #path: string;
  readonly #onError: (err: unknown) => void;
  #pending: (() => string) | undefined;
  #running: Promise<void> | undefined;

  constructor(path: string, onError: (err: unknown) => void = () => undefined) {
    this.#path = path;
    this.#onError = onError;
  }

  /** Schedules a write of what `content()` returns when the write starts. */
  save(content: () => string): void {
    this.#pending = content;
    this.#running ??= this.#drain();
  }

  /** Resolves when every requested write is on disk. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      for (let next = this.#pending; next !== undefined; next = this.#pending) {
        this.#pending = undefined;
        try {
          await writePrivateFileAsync(this.#path, next());
        } catch (err) {
          this.#onError(err);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}

/**
 * The records of a saved JSON array (a state file this program wrote), each checked by `parse`.
 * A missing or unreadable file gives none; an item that does not parse is skipped and reported to
 * `onInvalid`, so one damaged entry never costs the others.
 */
export function readSavedRecords<T>(path: string, parse: (item: unknown) => T, onInvalid: () => void = () => undefined): T[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const records: T[] = [];
  for (const item of parsed as unknown[]) {
    try {
      records.push(parse(item));
    } catch {
      onInvalid();
    }
  }
  return records;
}

/** The file's text, or undefined when it does not exist. Other failures throw SALA_E_DATA_DIR. */
export function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SalaError('SALA_E_DATA_DIR', `Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Puts a secret file that someone loosened back to owner-only (POSIX; a no-op on Windows). */
export function tightenToOwnerOnly(path: string): void {
  if (process.platform === 'win32') return;
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch (err) {
    throw new SalaError('SALA_E_DATA_DIR', `Cannot restrict ${path} to its owner: ${(err as Error).message}`, { cause: err });
  }
}

/** Removes a file if it is there; a missing file is not an error. */
export function removeIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
