import { ConfigInvalidError, SalaError } from '../../common/index.js';
import { MAX_DATE_MS, parseIsoTimestampMs } from './iso-time.js';
import { isUniqueViolation, type NedbDatastore } from '../../common/store/nedb-collection.js';
import { checkStoredLog, toStoredLogDocument, type StoredLogDocument } from './records.js';
import type { StoreGuard } from './store-guard.js';
import type { LogQuery, LogRecord, LogStore } from './store.js';

const COLLECTION = 'logs';
/** Oldest first; the id breaks ties so equal timestamps come back in one stable order. */
const LOG_ORDER = Object.freeze({ atMs: 1, id: 1 });

interface LogQueryPlan {
  readonly filter: Record<string, unknown>;
  readonly limit: number | undefined;
}

export class NedbLogStore implements LogStore {
  readonly #db: NedbDatastore;
  readonly #guard: StoreGuard;

  constructor(db: NedbDatastore, guard: StoreGuard) {
    this.#db = db;
    this.#guard = guard;
  }

  /**
   * Validates the whole batch first (one bad record stores nothing), then inserts the records whose
   * id is new. The unique index on `id` is what makes this safe when appends overlap: the common
   * path checks the ids and inserts the rest in one write, and if another append stored one of them
   * in between, that insert fails as a whole and we fall back to one insert per record.
   */
  append(records: readonly LogRecord[]): Promise<{ stored: number }> {
    return this.#guard.run(COLLECTION, 'write', async () => {
      if (!Array.isArray(records)) throw invalidLog('the batch is not an array');
      const batch = new Map<string, StoredLogDocument>();
      for (const [index, record] of records.entries()) {
        const checked = toStoredLogDocument(record);
        if (!checked.ok) throw invalidLog(`record ${index}: ${checked.problem}`);
        if (!batch.has(checked.value.id)) batch.set(checked.value.id, checked.value); // first copy wins
      }
      if (batch.size === 0) return { stored: 0 };

      const existing: unknown[] = await this.#db.find<{ id: unknown }>({ id: { $in: [...batch.keys()] } }, { id: 1, _id: 0 });
      for (const doc of existing) batch.delete(String((doc as { id?: unknown }).id));
      const fresh = [...batch.values()];
      if (fresh.length === 0) return { stored: 0 };

      try {
        await this.#db.insert(fresh);
        return { stored: fresh.length };
      } catch (err) {
        if (!isUniqueViolation(err)) throw err; // NeDB rolled the whole insert back
      }
      let stored = 0;
      for (const doc of fresh) {
        try {
          await this.#db.insert(doc);
          stored += 1;
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
        }
      }
      return { stored };
    });
  }

  /**
   * Sorting and the limit run inside NeDB's cursor, over references to the matching documents
   * (narrowed by the `user` or `atMs` index); only the records returned are copied. Damaged
   * documents are skipped, and the next page is fetched so a limit still yields `limit` records.
   */
  query(query: LogQuery): Promise<LogRecord[]> {
    return this.#guard.run(COLLECTION, 'read', async () => {
      const { filter, limit } = planLogQuery(query);
      if (limit === 0) return [];
      if (limit === undefined) return this.#valid(await this.#db.find(filter).sort(LOG_ORDER));

      const records: LogRecord[] = [];
      // Logs are only ever added, so a page boundary can only move later: a record may show up
      // twice across pages (dropped here by id), never go missing.
      const seenIds = new Set<string>();
      let offset = 0;
      while (records.length < limit) {
        const wanted = limit - records.length;
        const page: unknown[] = await this.#db.find(filter).sort(LOG_ORDER).skip(offset).limit(wanted);
        offset += page.length;
        for (const record of this.#valid(page)) {
          if (seenIds.has(record.id)) continue;
          seenIds.add(record.id);
          records.push(record);
        }
        if (page.length < wanted) break;
      }
      return records;
    });
  }

  #valid(docs: readonly unknown[]): LogRecord[] {
    const records: LogRecord[] = [];
    for (const doc of docs) {
      const checked = checkStoredLog(doc);
      if (checked.ok) records.push(checked.value);
      else this.#guard.skipInvalid(COLLECTION, doc, checked.problem);
    }
    return records;
  }
}

function invalidLog(problem: string): SalaError {
  return new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `Cannot store this log batch: ${problem}.`);
}

function timeBound(query: LogQuery, key: 'since' | 'until'): number | undefined {
  const value: unknown = query[key];
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? parseIsoTimestampMs(value) : undefined;
  if (ms === undefined) throw new ConfigInvalidError(key, 'is not an ISO 8601 date or date-time');
  return ms;
}

function planLogQuery(query: LogQuery): LogQueryPlan {
  if (typeof query !== 'object' || query === null) throw new ConfigInvalidError('query', 'is not an object');
  const user: unknown = query.user;
  if (user !== undefined && typeof user !== 'string') throw new ConfigInvalidError('user', 'is not a string');
  const limit: unknown = query.limit;
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)) {
    throw new ConfigInvalidError('limit', 'is not a non-negative integer');
  }
  const sinceMs = timeBound(query, 'since');
  const untilMs = timeBound(query, 'until');
  // Always bounded below: the range then also excludes documents whose atMs is not a number.
  const atMs: Record<string, number> = { $gte: sinceMs ?? -MAX_DATE_MS };
  if (untilMs !== undefined) atMs['$lt'] = untilMs;
  const filter: Record<string, unknown> = { atMs };
  if (user !== undefined) filter['user'] = user;
  return { filter, limit };
}
