import { randomUUID } from 'node:crypto';
import { BackgroundFileWriter, LOG_EVENT, MAX_LOG_BATCH, readSavedRecords, type LogEvent, type Logger } from '../../common/index.js';

/**
 * Activity events waiting to reach the server's log. Each event gets an id when it is recorded; it
 * is sent in batches, and forgotten only when the server acknowledges that id — so a server outage
 * or a dropped batch loses nothing, and a batch sent twice is stored once (the server de-duplicates
 * by id). With a file path the queue is saved (debounced) and survives a restart of the peer.
 * Bounded: past `maxEvents` the oldest events are dropped, and that is logged.
 */
export class ActivityOutbox {
  readonly #pending = new Map<string, LogEvent>();
  readonly #inFlight = new Set<string>();
  readonly #path: string | undefined;
  readonly #maxEvents: number;
  readonly #log: Logger | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  readonly #writer: BackgroundFileWriter | undefined;

  constructor(options: { path?: string; maxEvents?: number; logger?: Logger } = {}) {
    this.#path = options.path;
    this.#maxEvents = options.maxEvents ?? 10_000;
    this.#log = options.logger;
    this.#writer = options.path === undefined ? undefined : new BackgroundFileWriter(options.path, (err) => this.#log?.warn('activity.save_failed', { message: (err as Error).message }));
    this.#load();
  }

  get size(): number {
    return this.#pending.size;
  }

  record(event: string, detail: string, atMs: number): LogEvent {
    const entry: LogEvent = { id: randomUUID(), at: atMs, event, detail: detail.slice(0, 1024) };
    this.#pending.set(entry.id, entry);
    while (this.#pending.size > this.#maxEvents) {
      const oldest = this.#pending.keys().next().value as string;
      this.#pending.delete(oldest);
      this.#inFlight.delete(oldest);
      this.#log?.warn('activity.dropped', { reason: 'outbox full' });
    }
    this.#scheduleSave();
    return entry;
  }

  /** Up to `max` (at most MAX_LOG_BATCH) events not already in flight, marked as in flight. */
  takeBatch(max = MAX_LOG_BATCH): LogEvent[] {
    const limit = Math.min(max, MAX_LOG_BATCH);
    const batch: LogEvent[] = [];
    for (const [id, event] of this.#pending) {
      if (this.#inFlight.has(id)) continue;
      batch.push(event);
      this.#inFlight.add(id);
      if (batch.length >= limit) break;
    }
    return batch;
  }

  acknowledge(ids: readonly string[]): void {
    for (const id of ids) {
      this.#pending.delete(id);
      this.#inFlight.delete(id);
    }
    this.#scheduleSave();
  }

  /** The connection dropped: whatever was in flight is sent again on the next connection. */
  requeue(): void {
    this.#inFlight.clear();
  }

  /** Writes the queue now (shutdown); `saved()` resolves when it is on disk. */
  flush(): void {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#writer?.save(() => JSON.stringify([...this.#pending.values()]));
  }

  /** Resolves when every requested save is on disk. */
  saved(): Promise<void> {
    return this.#writer?.idle() ?? Promise.resolve();
  }

  #scheduleSave(): void {
    if (this.#path === undefined || this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      // In the background: an fsync on the event loop can stall chat for a long moment.
      this.#writer?.save(() => JSON.stringify([...this.#pending.values()]));
    }, 200);
    this.#saveTimer.unref();
  }

  #load(): void {
    if (this.#path === undefined) return;
    for (const event of readSavedRecords(this.#path, (item) => LOG_EVENT.parse(item, 'event'), () => this.#log?.warn('activity.invalid_saved_event'))) {
      this.#pending.set(event.id, event);
    }
  }
}
