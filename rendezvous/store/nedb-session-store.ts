import { SalaError } from '../../common/index.js';
import type { NedbDatastore } from '../../common/store/nedb-collection.js';
import { checkSessionRecord } from './records.js';
import type { StoreGuard } from './store-guard.js';
import type { SessionRecord, SessionStore } from './store.js';

const COLLECTION = 'sessions';

export class NedbSessionStore implements SessionStore {
  readonly #db: NedbDatastore;
  readonly #guard: StoreGuard;

  constructor(db: NedbDatastore, guard: StoreGuard) {
    this.#db = db;
    this.#guard = guard;
  }

  /** Inserts the session or replaces the one with the same sessionId. */
  put(record: SessionRecord): Promise<void> {
    return this.#guard.run(COLLECTION, 'write', async () => {
      const checked = checkSessionRecord(record);
      if (!checked.ok) {
        throw new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `Cannot store this session record: ${checked.problem}.`);
      }
      const { sessionId } = checked.value;
      // A whole-document update replaces the fields and keeps NeDB's _id.
      await this.#db.update({ sessionId }, { ...checked.value }, { upsert: true });
    });
  }

  remove(sessionId: string): Promise<void> {
    return this.#guard.run(COLLECTION, 'write', async () => {
      if (typeof sessionId !== 'string') return;
      await this.#db.remove({ sessionId }, { multi: false });
    });
  }

  /** Oldest login first. */
  list(): Promise<SessionRecord[]> {
    return this.#guard.run(COLLECTION, 'read', async () => {
      const docs: unknown[] = await this.#db.find({}).sort({ since: 1, sessionId: 1 });
      const sessions: SessionRecord[] = [];
      for (const doc of docs) {
        const checked = checkSessionRecord(doc);
        if (checked.ok) sessions.push(checked.value);
        else this.#guard.skipInvalid(COLLECTION, doc, checked.problem);
      }
      return sessions;
    });
  }
}
