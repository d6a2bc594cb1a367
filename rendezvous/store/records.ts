/**
 * Validators between the store's typed records and the `unknown` documents NeDB holds.
 *
 * Documents read back from disk are untrusted (a hand edit, a half-written line, an older version):
 * each reader turns one into a record of exactly the interface's shape (no `_id`, no `atMs`) or
 * into a problem description. Records handed to the store are checked with the same rules before
 * anything is written, and their timestamps are put in the canonical UTC form.
 */
import type { LogRecord, SessionRecord, UserRecord } from './store.js';
import { normalizeIsoTimestamp } from './iso-time.js';

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** A log record as stored: the record plus `atMs`, the numeric time the range queries use. */
export interface StoredLogDocument extends LogRecord {
  atMs: number;
}

const LOG_SOURCES: ReadonlySet<string> = new Set<LogRecord['source']>(['server', 'peer']);

class FieldProblem extends Error {}

/** Reads own, typed fields of a plain object, or throws FieldProblem naming the field. */
class FieldReader {
  readonly #doc: Readonly<Record<string, unknown>>;

  constructor(doc: unknown) {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new FieldProblem('not an object');
    this.#doc = doc as Readonly<Record<string, unknown>>;
  }

  #get(key: string): unknown {
    return Object.hasOwn(this.#doc, key) ? this.#doc[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#doc, key) && this.#doc[key] !== undefined;
  }

  string(key: string, options: { isEmptyAllowed?: boolean } = {}): string {
    const value = this.#get(key);
    if (typeof value !== 'string') throw new FieldProblem(`field "${key}" is not a string`);
    if (value === '' && options.isEmptyAllowed !== true) throw new FieldProblem(`field "${key}" is empty`);
    return value;
  }

  boolean(key: string): boolean {
    const value = this.#get(key);
    if (typeof value !== 'boolean') throw new FieldProblem(`field "${key}" is not a boolean`);
    return value;
  }

  count(key: string): number {
    const value = this.#get(key);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new FieldProblem(`field "${key}" is not a non-negative integer`);
    }
    return value;
  }

  /** An ISO 8601 timestamp, returned in the canonical UTC form. */
  timestamp(key: string): string {
    const normalized = normalizeIsoTimestamp(this.string(key));
    if (normalized === undefined) throw new FieldProblem(`field "${key}" is not an ISO 8601 timestamp`);
    return normalized;
  }

  number(key: string): number {
    const value = this.#get(key);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldProblem(`field "${key}" is not a number`);
    return value;
  }
}

function check<T>(read: () => T): Checked<T> {
  try {
    return { ok: true, value: read() };
  } catch (err) {
    if (err instanceof FieldProblem) return { ok: false, problem: err.message };
    throw err;
  }
}

export function checkUserRecord(doc: unknown): Checked<UserRecord> {
  return check(() => {
    const r = new FieldReader(doc);
    return {
      name: r.string('name'),
      passwordHash: r.string('passwordHash'),
      isDisabled: r.boolean('isDisabled'),
      createdAt: r.timestamp('createdAt'),
      passwordChangedAt: r.timestamp('passwordChangedAt'),
    };
  });
}

type UserPatch = Partial<Omit<UserRecord, 'name'>>;

/** Keeps only the patchable fields that are present, validated; `name` and unknown keys are dropped. */
export function checkUserPatch(patch: unknown): Checked<UserPatch> {
  return check(() => {
    const r = new FieldReader(patch);
    const out: UserPatch = {};
    if (r.has('passwordHash')) out.passwordHash = r.string('passwordHash');
    if (r.has('isDisabled')) out.isDisabled = r.boolean('isDisabled');
    if (r.has('createdAt')) out.createdAt = r.timestamp('createdAt');
    if (r.has('passwordChangedAt')) out.passwordChangedAt = r.timestamp('passwordChangedAt');
    return out;
  });
}

export function checkSessionRecord(doc: unknown): Checked<SessionRecord> {
  return check(() => {
    const r = new FieldReader(doc);
    return {
      sessionId: r.string('sessionId'),
      user: r.string('user'),
      dhPk: r.string('dhPk'),
      sigPk: r.string('sigPk'),
      address: r.string('address', { isEmptyAllowed: true }),
      since: r.timestamp('since'),
      lastSeenAt: r.timestamp('lastSeenAt'),
      generation: r.count('generation'),
    };
  });
}

function readLogFields(r: FieldReader): LogRecord {
  const source = r.string('source');
  if (!LOG_SOURCES.has(source)) throw new FieldProblem('field "source" is neither "server" nor "peer"');
  return {
    id: r.string('id'),
    at: r.timestamp('at'),
    user: r.string('user', { isEmptyAllowed: true }),
    session: r.string('session', { isEmptyAllowed: true }),
    event: r.string('event'),
    detail: r.string('detail', { isEmptyAllowed: true }),
    source: source as LogRecord['source'],
  };
}

/** A record about to be stored: validated, `at` canonicalised, `atMs` added. */
export function toStoredLogDocument(record: unknown): Checked<StoredLogDocument> {
  return check(() => {
    const value = readLogFields(new FieldReader(record));
    return { ...value, atMs: Date.parse(value.at) };
  });
}

/** A document read back: `atMs` must agree with `at`, or range queries would silently misfile it. */
export function checkStoredLog(doc: unknown): Checked<LogRecord> {
  return check(() => {
    const r = new FieldReader(doc);
    const value = readLogFields(r);
    if (r.number('atMs') !== Date.parse(value.at)) throw new FieldProblem('field "atMs" disagrees with "at"');
    return value;
  });
}
