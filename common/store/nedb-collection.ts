/**
 * Opening one NeDB datafile (`<dataDir>/db/<name>.db`) safely.
 *
 * NeDB keeps the whole collection in memory and rewrites the file on every load, dropping the lines
 * it cannot parse. So before loading we count those lines ourselves and, if there are any, copy the
 * file aside (`<name>.db.corrupt-<ms>`) and warn: the load then goes ahead instead of refusing to
 * start (NeDB's default when more than 10% of the lines are bad, which one torn line in a small
 * file already is), and nothing is lost for good.
 */
import { createReadStream } from 'node:fs';
import { chmod, constants as fsConstants, copyFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import Datastore from 'nedb-promises';
import { SalaError } from '../errors.js';
import type { Logger } from '../log/index.js';

export type NedbDatastore = Datastore<{ _id: string }>;

export interface CollectionIndex {
  readonly fieldName: string;
  readonly unique: boolean;
}

export const DB_DIR_NAME = 'db';
export const DB_FILE_MODE = 0o600;
export const DB_DIR_MODE = 0o700;
const IS_POSIX = process.platform !== 'win32';

/** The line splitter of NeDB's loader (@seald-io/nedb lib/byline.js): it must agree with ours. */
const NEDB_LINE_BREAK = /\r\n|[\n\v\f\r\x85\u2028\u2029]/;

/**
 * NeDB writes `JSON.stringify` output, which leaves U+0085, U+2028 and U+2029 unescaped, but its
 * loader splits lines on them: one such character in a stored string would tear that record in two
 * on the next start. They can only occur inside JSON strings, so writing them as `\uXXXX` escapes
 * yields the same JSON value; reading needs no inverse because JSON.parse decodes the escapes.
 */
export function escapeLineBreaksInJson(line: string): string {
  return line.replace(/[\x85\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** True for a line NeDB's loader keeps: a document with an `_id`, or an index declaration. */
function isLoadableLine(line: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof doc !== 'object' || doc === null) return false;
  const fields = doc as Record<string, unknown>;
  return Boolean(fields['_id']) || fields['$$indexCreated'] !== undefined || fields['$$indexRemoved'] !== undefined;
}

/** How many non-empty lines of `file` NeDB would drop on load (0 when the file does not exist). */
export async function countUnloadableLines(file: string): Promise<number> {
  let bad = 0;
  let carry = '';
  try {
    for await (const chunk of createReadStream(file, { encoding: 'utf8' })) {
      const parts = (carry + String(chunk)).split(NEDB_LINE_BREAK);
      carry = parts.pop() ?? '';
      for (const line of parts) if (line !== '' && !isLoadableLine(line)) bad += 1;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (carry !== '' && !isLoadableLine(carry)) bad += 1;
  return bad;
}

async function restrictMode(path: string, mode: number): Promise<void> {
  if (!IS_POSIX) return; // Windows: the data dir's ACL (set by the server) covers the files
  await chmod(path, mode);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function openCollection(
  dbDir: string,
  name: string,
  indexes: readonly CollectionIndex[],
  logger: Logger,
): Promise<NedbDatastore> {
  const file = join(dbDir, `${name}.db`);
  try {
    const badLines = await countUnloadableLines(file);
    if (badLines > 0) {
      const backup = `${file}.corrupt-${Date.now()}`;
      await copyFile(file, backup, fsConstants.COPYFILE_EXCL);
      await restrictMode(backup, DB_FILE_MODE);
      logger.warn('store.file.corrupt', { collection: name, lines: badLines, backup: basename(backup) });
    }

    const options = {
      filename: file,
      // Our own check above warned and kept a copy, so NeDB must not refuse to start.
      corruptAlertThreshold: 1,
      // Applied by NeDB when it creates the file, its `~` temp file on compaction, and the folder.
      modes: { fileMode: DB_FILE_MODE, dirMode: DB_DIR_MODE },
      afterSerialization: escapeLineBreaksInJson,
      beforeDeserialization: (line: string): string => line,
    };
    const datastore = Datastore.create(options);
    await datastore.load();
    // Sparse: a document missing the field (a damaged one) must not stop the load; it is skipped
    // when read, and every record we write has the field.
    for (const index of indexes) await datastore.ensureIndex({ ...index, sparse: true });
    // A file from before these modes, or restored by hand, may be wider: tighten it now.
    if (await exists(file)) await restrictMode(file, DB_FILE_MODE);
    return datastore;
  } catch (err) {
    throw new SalaError(
      'SALA_E_DATA_DIR',
      `The database ${file} cannot be opened: ${(err as Error).message ?? String(err)}. ` +
        'Check its permissions and free disk space; the .corrupt-* copies next to it hold any damaged data.',
      { cause: err },
    );
  }
}

/** Rewrites the datafile from memory, after every queued operation (NeDB's compaction). */
export async function compactCollection(datastore: NedbDatastore): Promise<void> {
  // nedb-promises proxies unknown properties to the @seald-io/nedb datastore, whose promise API
  // its typings omit; `persistence.compactDatafile` is the typed path but prints a deprecation.
  const compact: unknown = Reflect.get(datastore, 'compactDatafileAsync');
  if (typeof compact !== 'function') throw new TypeError('nedb-promises no longer exposes compactDatafileAsync');
  const done: unknown = compact.call(datastore);
  await done;
}

/** True for NeDB's unique-index violation (errorType set by @seald-io/binary-search-tree). */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { errorType?: unknown }).errorType === 'uniqueViolated';
}
