import type { GroupFragment } from '../../common/index.js';

export interface SentEntry {
  /** The key epoch the datagram was sealed in; a repair is sealed in the same one (see GroupSender). */
  readonly epoch: number;
  /** The DATA fragment it carried (a copy: the caller's buffers may be reused). */
  readonly fragment: GroupFragment;
  /** When it was last repaired (monotonic ms), so a NACK storm repairs each seq at most once per interval. */
  repairedAtMs: number;
}

/**
 * The recent DATA datagrams a sender sent to one group, by seq, so it can answer NACKs.
 * Bounded by entries and by fragment bytes; the oldest go first. A seq that fell out can no longer
 * be repaired and its receivers give up on it after their repair timeout.
 */
export class SendHistory {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** Insertion order is seq order: the first entry is the oldest. */
  readonly #entries = new Map<number, SentEntry>();
  #bytes = 0;

  constructor(maxEntries: number, maxBytes: number) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  add(seq: number, epoch: number, fragment: GroupFragment): void {
    const copy: GroupFragment = {
      msgId: Uint8Array.from(fragment.msgId),
      fragIndex: fragment.fragIndex,
      fragCount: fragment.fragCount,
      bytes: Uint8Array.from(fragment.bytes),
    };
    this.#entries.set(seq, { epoch, fragment: copy, repairedAtMs: Number.NEGATIVE_INFINITY });
    this.#bytes += copy.bytes.length;
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.entries().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value[0]);
      this.#bytes -= oldest.value[1].fragment.bytes.length;
    }
  }

  get(seq: number): SentEntry | undefined {
    return this.#entries.get(seq);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
