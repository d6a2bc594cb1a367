import { ensurePrivateDir, field, parseShape, silentLogger, type FieldValue, type Logger } from '../../common/index.js';
import { compactCollection, isUniqueViolation, openCollection, type NedbDatastore } from '../../common/store/nedb-collection.js';

export type ChatStatus = 'queued' | 'sent' | 'delivered' | 'received';

const CHAT_RECORD = field.object({
  id: field.string({ maxBytes: 64, minBytes: 1 }),
  from: field.string({ maxBytes: 32, minBytes: 2 }),
  to: field.string({ maxBytes: 32, minBytes: 2 }),
  /** The other user: `to` for our messages, `from` for theirs (the history key). */
  peer: field.string({ maxBytes: 32, minBytes: 2 }),
  text: field.string({ maxBytes: 64 * 1024 }),
  at: field.uint(),
  /** Order of insertion on this device (ids are random; `at` comes from two clocks). */
  seq: field.uint(),
  status: field.oneOf('queued', 'sent', 'delivered', 'received'),
});

export type ChatRecord = FieldValue<typeof CHAT_RECORD>;

/**
 * This device's 1:1 chat history, in an owner-only NeDB file in the peer's data dir. It is the
 * outbox too: messages not yet acknowledged stay `queued`/`sent` and are sent again, in order, when
 * a link to their recipient comes up — so nothing typed while the other side is away is lost, even
 * across a restart of this program. Texts live here only, never in logs or on the server.
 */
export class ChatHistory {
  readonly #db: NedbDatastore;
  #nextSeq = 0;

  private constructor(db: NedbDatastore) {
    this.#db = db;
  }

  /** Opens `chat-history.db` in `dir` (the peer's data dir); damaged lines are kept aside, not fatal. */
  static async open(dir: string, logger: Logger = silentLogger): Promise<ChatHistory> {
    ensurePrivateDir(dir);
    const db = await openCollection(dir, 'chat-history', [
      { fieldName: 'id', unique: true },
      { fieldName: 'peer', unique: false },
    ], logger);
    const history = new ChatHistory(db);
    const last = (await db.find({}).sort({ seq: -1 }).limit(1)) as unknown[];
    const lastSeq = last.length === 0 ? -1 : parseShape({ seq: field.uint() }, pick(last[0], 'seq'), 'history').seq;
    history.#nextSeq = lastSeq + 1;
    return history;
  }

  async has(id: string): Promise<boolean> {
    return (await this.#db.count({ id })) > 0;
  }

  /** Stores a new record (our queued message or their received one); false if the id is known. */
  async add(record: Omit<ChatRecord, 'seq'>): Promise<boolean> {
    try {
      await this.#db.insert({ ...record, seq: this.#nextSeq++ });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async setStatus(id: string, status: ChatStatus): Promise<void> {
    await this.#db.update({ id }, { $set: { status } });
  }

  /** The conversation with `peer`, oldest first. */
  async with(peer: string): Promise<ChatRecord[]> {
    return this.#parse(await this.#db.find({ peer }).sort({ seq: 1 }));
  }

  /** Our messages to `peer` not yet acknowledged, in the order they were typed. */
  async unacknowledged(peer: string, from: string): Promise<ChatRecord[]> {
    return this.#parse(await this.#db.find({ peer, from, status: { $in: ['queued', 'sent'] } }).sort({ seq: 1 }));
  }

  /** Everyone this device has a conversation with. */
  async peers(): Promise<string[]> {
    const documents = (await this.#db.find({}, { peer: 1 })) as unknown[];
    return [...new Set(documents.map((doc) => parseShape({ peer: field.string({ maxBytes: 32 }) }, pick(doc, 'peer'), 'history').peer))];
  }

  /** The users our unacknowledged messages are waiting for. */
  async pendingRecipients(from: string): Promise<string[]> {
    const documents = (await this.#db.find({ from, status: { $in: ['queued', 'sent'] } }, { peer: 1 })) as unknown[];
    return [...new Set(documents.map((doc) => parseShape({ peer: field.string({ maxBytes: 32 }) }, pick(doc, 'peer'), 'history').peer))];
  }

  async close(): Promise<void> {
    await compactCollection(this.#db);
  }

  #parse(documents: unknown[]): ChatRecord[] {
    return documents.map((doc) => {
      const { _id, ...rest } = doc as Record<string, unknown>;
      void _id;
      return CHAT_RECORD.parse(rest, 'history');
    });
  }
}

function pick(value: unknown, key: string): Record<string, unknown> {
  return { [key]: (value as Record<string, unknown>)[key] };
}
