/**
 * The embedded default store: NeDB (nedb-promises), one datafile per collection in
 * `<dataDir>/db/` (users.db, sessions.db, logs.db), owner-only on POSIX.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigInvalidError, SalaError, silentLogger, type Logger } from '../../common/index.js';
import {
  compactCollection,
  DB_DIR_MODE,
  DB_DIR_NAME,
  openCollection,
  type NedbDatastore,
} from '../../common/store/nedb-collection.js';
import { NedbLogStore } from './nedb-log-store.js';
import { NedbSessionStore } from './nedb-session-store.js';
import { NedbUserStore } from './nedb-user-store.js';
import { StoreGuard } from './store-guard.js';
import type { LogStore, SessionStore, Store, UserStore } from './store.js';

export interface NedbStoreOptions {
  /** Receives `store.file.corrupt`, `store.record.invalid` and `store.compaction.failed` warnings. */
  logger?: Logger;
  /**
   * How often users.db and sessions.db are rewritten without superseded lines (NeDB appends a line
   * per update, and sessions update often); 0 turns it off. logs.db is append-only: it is
   * compacted only on close. Default 10 minutes.
   */
  compactionIntervalMs?: number;
}

export const DEFAULT_COMPACTION_INTERVAL_MS = 10 * 60_000;
const MIN_COMPACTION_INTERVAL_MS = 1_000;

class NedbStore implements Store {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly logs: LogStore;
  readonly #collections: ReadonlyMap<string, NedbDatastore>;
  readonly #guard: StoreGuard;
  readonly #logger: Logger;
  readonly #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(collections: ReadonlyMap<string, NedbDatastore>, logger: Logger, compactionIntervalMs: number) {
    const get = (name: string): NedbDatastore => {
      const db = collections.get(name);
      if (db === undefined) throw new Error(`collection ${name} was not opened`);
      return db;
    };
    this.#collections = collections;
    this.#logger = logger;
    this.#guard = new StoreGuard(logger);
    this.users = new NedbUserStore(get('users'), this.#guard);
    this.sessions = new NedbSessionStore(get('sessions'), this.#guard);
    this.logs = new NedbLogStore(get('logs'), this.#guard);
    if (compactionIntervalMs > 0) {
      this.#timer = setInterval(() => this.#compactMutable(), compactionIntervalMs);
      this.#timer.unref();
    }
  }

  /** Waits for running operations, then compacts every datafile. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      await this.#guard.drain();
      const results = await Promise.allSettled([...this.#collections.values()].map((db) => compactCollection(db)));
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed !== undefined) {
        throw new SalaError(
          'SALA_E_DATA_DIR',
          'The server database could not be written on close; check free disk space and permissions.',
          { cause: failed.reason },
        );
      }
    })();
    return this.#closing;
  }

  #compactMutable(): void {
    if (this.#guard.isClosing) return;
    for (const name of ['users', 'sessions']) {
      const db = this.#collections.get(name);
      if (db === undefined) continue;
      compactCollection(db).catch((err: unknown) => {
        this.#logger.warn('store.compaction.failed', { collection: name, message: (err as Error).message });
      });
    }
  }
}

export async function openNedbStore(dataDir: string, options: NedbStoreOptions = {}): Promise<Store> {
  if (typeof dataDir !== 'string' || dataDir === '') throw new ConfigInvalidError('dataDir', 'must be a directory path');
  const compactionIntervalMs = options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS;
  if (
    !Number.isSafeInteger(compactionIntervalMs) ||
    (compactionIntervalMs !== 0 && compactionIntervalMs < MIN_COMPACTION_INTERVAL_MS)
  ) {
    throw new ConfigInvalidError('compactionIntervalMs', `must be 0 or an integer of at least ${MIN_COMPACTION_INTERVAL_MS}`);
  }
  const logger = options.logger ?? silentLogger;

  const dbDir = join(dataDir, DB_DIR_NAME);
  try {
    await mkdir(dbDir, { recursive: true, mode: DB_DIR_MODE });
    // mkdir leaves an existing folder's mode alone; tighten one left wider by hand or by an old version.
    if (process.platform !== 'win32') await chmod(dbDir, DB_DIR_MODE);
  } catch (err) {
    throw new SalaError('SALA_E_DATA_DIR', `Cannot create the database folder ${dbDir}: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const [users, sessions, logs] = await Promise.all([
    openCollection(dbDir, 'users', [{ fieldName: 'name', unique: true }], logger),
    openCollection(dbDir, 'sessions', [{ fieldName: 'sessionId', unique: true }], logger),
    openCollection(
      dbDir,
      'logs',
      [
        { fieldName: 'id', unique: true },
        { fieldName: 'user', unique: false },
        { fieldName: 'atMs', unique: false },
      ],
      logger,
    ),
  ]);
  const collections = new Map([
    ['users', users],
    ['sessions', sessions],
    ['logs', logs],
  ]);
  return new NedbStore(collections, logger, compactionIntervalMs);
}
