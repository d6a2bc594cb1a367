/**
 * What the rendezvous server keeps on disk, behind one small interface so the embedded NeDB
 * default can be replaced. Only the server process ever opens the store (admin commands go through
 * the HTTPS admin API), because NeDB must never be written by two processes.
 */

export interface UserRecord {
  /** Normalised user name (common/names.ts): the key. */
  name: string;
  /** libsodium crypto_pwhash_str output (argon2id, parameters inside the string). */
  passwordHash: string;
  isDisabled: boolean;
  /** ISO 8601 UTC. */
  createdAt: string;
  passwordChangedAt: string;
}

export interface SessionRecord {
  sessionId: string;
  user: string;
  /** Device keys the session is bound to (base64). */
  dhPk: string;
  sigPk: string;
  /** Client address as the server saw it at login. */
  address: string;
  /** ISO 8601 UTC of the login. */
  since: string;
  /** Last time the session had a live connection (ISO 8601 UTC); a restarted server gives detached sessions their grace from here. */
  lastSeenAt: string;
  /** Ticket generation last issued. */
  generation: number;
}

export interface LogRecord {
  /** Unique event id (the peer's or the server's); a second record with the same id is not stored. */
  id: string;
  /** ISO 8601 UTC. */
  at: string;
  user: string;
  /** Session id the event is attributed to ('' for events with no session, e.g. login.failed). */
  session: string;
  event: string;
  /** Metadata only (never message texts or passwords). */
  detail: string;
  source: 'server' | 'peer';
}

export interface LogQuery {
  user?: string;
  /** Inclusive, ISO 8601. */
  since?: string;
  /** Exclusive, ISO 8601. */
  until?: string;
  /** At most this many records, oldest first. */
  limit?: number;
}

/**
 * Timestamps (`createdAt`, `since`, `at`, …) are stored and returned in the canonical UTC form of
 * `Date#toISOString`, whatever ISO 8601 offset they were given in. A record that fails validation
 * on the way in is refused with SALA_E_PROTOCOL_INVALID_FIELD; one damaged on disk is skipped on
 * the way out (with a `store.record.invalid` warning). Records come back in exactly these shapes.
 */
export interface UserStore {
  /** Exact match on the normalised name. */
  get(name: string): Promise<UserRecord | undefined>;
  /** Throws SalaError SALA_E_USER_EXISTS when the name is taken, SALA_E_INVALID_NAME when it is not normalised. */
  create(record: UserRecord): Promise<void>;
  /** Returns false when there is no such user. Never renames: a `name` in the patch is ignored. */
  update(name: string, patch: Partial<Omit<UserRecord, 'name'>>): Promise<boolean>;
  /** Sorted by name. */
  list(): Promise<UserRecord[]>;
}

export interface SessionStore {
  /** Inserts the session or replaces the one with the same sessionId. */
  put(record: SessionRecord): Promise<void>;
  /** Does nothing for an unknown id. */
  remove(sessionId: string): Promise<void>;
  /** Oldest login first. */
  list(): Promise<SessionRecord[]>;
}

export interface LogStore {
  /**
   * Stores the records whose id is new; returns how many were new. Idempotent per id, also for ids
   * repeated within the batch (the first copy wins) and for concurrent appends. The batch is
   * validated first: one invalid record (e.g. an `at` that is not ISO 8601) stores nothing.
   */
  append(records: readonly LogRecord[]): Promise<{ stored: number }>;
  /** Oldest first, ties by id. A bad since, until or limit is SALA_E_CONFIG_INVALID naming it. */
  query(query: LogQuery): Promise<LogRecord[]>;
}

export interface Store {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly logs: LogStore;
  /**
   * Waits for running operations, flushes (NeDB compaction) and releases the files. Idempotent;
   * afterwards every operation rejects with SALA_E_DATA_DIR.
   */
  close(): Promise<void>;
}
