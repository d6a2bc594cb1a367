import { BackgroundFileWriter, field, readSavedRecords, type FieldValue, type Logger } from '../../common/index.js';

const ID = field.string({ maxBytes: 64, minBytes: 1 });
const USER = field.string({ maxBytes: 32, minBytes: 2 });

/** A file this device is sending: kept until the receiver confirms, declines or either side cancels. */
export const OUTGOING_RECORD = field.object({
  transferId: ID,
  to: USER,
  path: field.string({ maxBytes: 4096, minBytes: 1 }),
  name: field.string({ maxBytes: 255, minBytes: 1 }),
  size: field.uint(),
  sha256: field.string({ maxBytes: 64, minBytes: 64 }),
  /** The file's modification time when it was hashed: a change means the file is not the one offered. */
  mtimeMs: field.uint(),
  createdAt: field.uint(),
});

/** A file offered to this device: `offered` until accepted, then `accepted` until stored or ended. */
export const INCOMING_RECORD = field.object({
  transferId: ID,
  from: USER,
  /** The name as offered (shown to the user), and the safe name it will be stored under. */
  offeredName: field.string({ maxBytes: 255, minBytes: 1 }),
  safeName: field.string({ maxBytes: 255, minBytes: 1 }),
  size: field.uint(),
  sha256: field.string({ maxBytes: 64, minBytes: 64 }),
  state: field.oneOf('offered', 'accepted'),
  /** The `.part` file, once accepted. */
  partPath: field.optional(field.string({ maxBytes: 4096, minBytes: 1 })),
  createdAt: field.uint(),
});

export type OutgoingRecord = FieldValue<typeof OUTGOING_RECORD>;
export type IncomingRecord = FieldValue<typeof INCOMING_RECORD>;

/**
 * Transfers that are not finished, saved in an owner-only JSON file in the user's folder so that a
 * transfer interrupted by a crash or a restart resumes under the same id. Bounded: the oldest
 * records go first (a transfer that old has long timed out).
 */
export class TransferRecords<T extends { transferId: string; createdAt: number }> {
  readonly #records = new Map<string, T>();
  readonly #maxRecords: number;
  readonly #onEvict: ((record: T) => void) | undefined;
  readonly #writer: BackgroundFileWriter;

  constructor(
    path: string,
    shape: { parse(value: unknown, path: string): T },
    options: { maxRecords?: number; logger?: Logger; onEvict?: (record: T) => void } = {},
  ) {
    this.#maxRecords = options.maxRecords ?? 1_000;
    this.#onEvict = options.onEvict;
    this.#writer = new BackgroundFileWriter(path, (err) => options.logger?.warn('files.save_failed', { message: (err as Error).message }));
    // Unreadable or missing: start empty (the partial files stay where they are).
    for (const record of readSavedRecords(path, (item) => shape.parse(item, 'transfer'), () => options.logger?.warn('files.invalid_saved_transfer'))) {
      this.#records.set(record.transferId, record);
    }
  }

  get(transferId: string): T | undefined {
    return this.#records.get(transferId);
  }

  all(): T[] {
    return [...this.#records.values()];
  }

  put(record: T): void {
    this.#records.delete(record.transferId);
    this.#records.set(record.transferId, record);
    while (this.#records.size > this.#maxRecords) {
      const oldest = this.#records.keys().next().value as string;
      const evicted = this.#records.get(oldest);
      this.#records.delete(oldest);
      if (evicted !== undefined) this.#onEvict?.(evicted);
    }
    this.#save();
  }

  remove(transferId: string): void {
    if (this.#records.delete(transferId)) this.#save();
  }

  /** Resolves when the saved file holds the latest state (shutdown, tests). */
  flushed(): Promise<void> {
    return this.#writer.idle();
  }

  /** Saved in the background (never an fsync on the event loop), always the latest state. */
  #save(): void {
    this.#writer.save(() => JSON.stringify(this.all()));
  }
}
