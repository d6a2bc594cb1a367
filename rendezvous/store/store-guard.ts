/**
 * What the three NeDB collections share: refusing work once the store is closing, knowing which
 * operations are still running so `close()` can wait for them, turning NeDB's plain errors into
 * SalaError, and warning (once per document) about damaged documents that reads skip.
 */
import { SalaError, toSalaError, type Logger } from '../../common/index.js';

/** Remembered damaged-document ids per collection, so a bad record warns once, not on every read. */
const MAX_REMEMBERED_INVALID = 1_000;

export class StoreGuard {
  readonly #logger: Logger;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #warned = new Map<string, Set<string>>();
  #isClosing = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get isClosing(): boolean {
    return this.#isClosing;
  }

  /** Runs one store operation; rejects at once when the store is closing. */
  run<T>(collection: string, operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#isClosing) {
      return Promise.reject(
        new SalaError('SALA_E_DATA_DIR', `The server database is closed; cannot ${operation} ${collection}.`),
      );
    }
    const promise = fn().catch((err: unknown) => {
      throw toSalaError(
        err,
        'SALA_E_DATA_DIR',
        `The server database could not ${operation} ${collection}; check the data directory's permissions and free disk space.`,
      );
    });
    this.#inFlight.add(promise);
    const forget = (): void => {
      this.#inFlight.delete(promise);
    };
    void promise.then(forget, forget);
    return promise;
  }

  /** Stops accepting operations and waits for the running ones to settle. */
  async drain(): Promise<void> {
    this.#isClosing = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  /** A document read from disk failed validation: it is skipped; say so once, without its content. */
  skipInvalid(collection: string, doc: unknown, problem: string): void {
    const rawId = typeof doc === 'object' && doc !== null ? (doc as { _id?: unknown })._id : undefined;
    const docId = typeof rawId === 'string' ? rawId : '';
    let seen = this.#warned.get(collection);
    if (seen === undefined) {
      seen = new Set();
      this.#warned.set(collection, seen);
    }
    if (docId !== '' && seen.has(docId)) return;
    if (docId !== '' && seen.size < MAX_REMEMBERED_INVALID) seen.add(docId);
    this.#logger.warn('store.record.invalid', { collection, docId, problem });
  }
}
