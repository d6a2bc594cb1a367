import { SalaError, normalizeUserName } from '../../common/index.js';
import { isUniqueViolation, type NedbDatastore } from '../../common/store/nedb-collection.js';
import { checkUserPatch, checkUserRecord } from './records.js';
import type { StoreGuard } from './store-guard.js';
import type { UserRecord, UserStore } from './store.js';

const COLLECTION = 'users';

export class NedbUserStore implements UserStore {
  readonly #db: NedbDatastore;
  readonly #guard: StoreGuard;

  constructor(db: NedbDatastore, guard: StoreGuard) {
    this.#db = db;
    this.#guard = guard;
  }

  get(name: string): Promise<UserRecord | undefined> {
    return this.#guard.run(COLLECTION, 'read', async () => {
      // A non-string would reach NeDB as an operator object ({$ne: …}) and match someone.
      if (typeof name !== 'string') return undefined;
      return this.#read(await this.#db.findOne({ name }));
    });
  }

  create(record: UserRecord): Promise<void> {
    return this.#guard.run(COLLECTION, 'write', async () => {
      const checked = checkUserRecord(record);
      if (!checked.ok) throw invalidUser(checked.problem);
      // The key is the normalised name; storing another spelling would allow twin accounts.
      if (normalizeUserName(checked.value.name) !== checked.value.name) {
        throw new SalaError('SALA_E_INVALID_NAME', `"${checked.value.name}" is not a normalised user name.`);
      }
      try {
        await this.#db.insert({ ...checked.value });
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new SalaError('SALA_E_USER_EXISTS', `An account named "${checked.value.name}" already exists.`, {
            cause: err,
          });
        }
        throw err;
      }
    });
  }

  update(name: string, patch: Partial<Omit<UserRecord, 'name'>>): Promise<boolean> {
    return this.#guard.run(COLLECTION, 'write', async () => {
      if (typeof name !== 'string') return false;
      const checked = checkUserPatch(patch);
      if (!checked.ok) throw invalidUser(checked.problem);
      if (Object.keys(checked.value).length === 0) return (await this.#db.count({ name })) > 0;
      const updated = await this.#db.update({ name }, { $set: checked.value }, {});
      return updated > 0;
    });
  }

  list(): Promise<UserRecord[]> {
    return this.#guard.run(COLLECTION, 'read', async () => {
      const docs: unknown[] = await this.#db.find({}).sort({ name: 1 });
      const users: UserRecord[] = [];
      for (const doc of docs) {
        const user = this.#read(doc);
        if (user !== undefined) users.push(user);
      }
      return users;
    });
  }

  #read(doc: unknown): UserRecord | undefined {
    if (doc === null || doc === undefined) return undefined;
    const checked = checkUserRecord(doc);
    if (checked.ok) return checked.value;
    this.#guard.skipInvalid(COLLECTION, doc, checked.problem);
    return undefined;
  }
}

function invalidUser(problem: string): SalaError {
  return new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `Cannot store this user record: ${problem}.`);
}
