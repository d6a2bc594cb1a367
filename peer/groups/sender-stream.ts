import type { GroupFragment, NackRange, Reassembler, SalaError } from '../../common/index.js';

/** One authenticated DATA datagram, or the REPAIR of one, as the stream needs it. */
export interface StreamDatagram {
  /** The DATA datagram's seq (for a REPAIR, its `repairedSeq`). */
  seq: number;
  fragment: GroupFragment;
  /** Its signed header time (server time). */
  timeMs: number;
}

export interface CompletedMessage {
  /** The msgId as hex: the message id on every end. */
  id: string;
  /** The reassembled message (group-message.ts encoding). */
  bytes: Uint8Array;
  /** Header time of the datagram that carried its first fragment (the earliest, when repaired too). */
  atMs: number;
}

export interface StreamStep {
  /** Messages now due, in the sender's order. */
  delivered: CompletedMessage[];
  /** Seqs given up on during this step (never received, no longer waited for). */
  lost: number;
  /** A fragment that contradicted earlier ones (the Reassembler refused it); the rest went on. */
  error?: SalaError;
}

interface MissingSeq {
  readonly sinceMs: number;
  lastNackMs: number | undefined;
}

/** Partial messages' first-fragment times kept per stream; older ones are forgotten (their `at` falls back). */
const MAX_FIRST_TIMES = 64;

/**
 * Per-sender order and gap tracking for one sender instance of one group, over the seqs of its
 * DATA datagrams (a sender sends everything else under another instance, so every seq of this
 * stream carries a fragment and can be repaired; a REPAIR fills the seq it names).
 *
 * A sender sends a message's fragments at consecutive seqs, so a fragment at seq s with index i
 * starts its message at s − i, and the message ends at s − i + fragCount − 1. A message is
 * delivered once it is complete and every seq before its first has been received or given up on
 * (`base` passed it): that is the sender's order. A message whose first seq precedes the first seq
 * this receiver saw (`startSeq`) is history and never delivered, so a late joiner gets nothing
 * from before it arrived, and asks for nothing either.
 *
 * Missing seqs (below the highest seen, or the rest of a message whose first fragments arrived)
 * are reported by nackCandidates() and given up by expire() after the repair timeout; at most
 * `maxSpan` seqs are ever waited for, so memory stays bounded whatever a sender's seqs do. Time is
 * passed in (monotonic ms); nothing here owns a timer.
 */
export class SenderStream {
  readonly key: string;
  readonly senderIdx: number;
  readonly instance: Uint8Array;
  readonly startSeq: number;
  lastActivityMs: number;
  readonly #maxSpan: number;
  /** Every seq below `base` is resolved (received, or given up on). */
  #base: number;
  #highest: number;
  /** Resolved seqs at or above `base`. */
  readonly #filled = new Set<number>();
  /** Unresolved seqs in [base, highest], ascending (they are only ever appended in seq order). */
  readonly #missing = new Map<number, MissingSeq>();
  /** Complete messages waiting for their turn, by first seq. */
  readonly #ready = new Map<number, CompletedMessage>();
  readonly #firstTimes = new Map<string, number>();

  constructor(params: { key: string; senderIdx: number; instance: Uint8Array; firstSeq: number; maxSpan: number; nowMs: number }) {
    this.key = params.key;
    this.senderIdx = params.senderIdx;
    this.instance = params.instance;
    this.startSeq = params.firstSeq;
    this.#base = params.firstSeq;
    this.#highest = params.firstSeq - 1;
    this.#maxSpan = params.maxSpan;
    this.lastActivityMs = params.nowMs;
  }

  get hasMissing(): boolean {
    return this.#missing.size > 0;
  }

  get missingCount(): number {
    return this.#missing.size;
  }

  /** Takes one authenticated datagram of this stream; `reassembler` is shared by all streams. */
  accept(datagram: StreamDatagram, reassembler: Reassembler, nowMs: number): StreamStep {
    const { seq, fragment, timeMs } = datagram;
    this.lastActivityMs = nowMs;
    const baseBefore = this.#base;
    let lost = this.#extendTo(seq, nowMs);
    this.#fill(seq);

    const firstSeq = seq - fragment.fragIndex;
    // Before our start (history), or at a seq already resolved (a duplicate, or one given up on).
    if (firstSeq < this.startSeq || seq < baseBefore) return { delivered: this.#advance(), lost };
    // The message's remaining fragments come at the following seqs: wait for them too, so a lost
    // last fragment is asked for even if the sender sends nothing after it.
    lost += this.#extendTo(firstSeq + fragment.fragCount - 1, nowMs);

    const idHex = Buffer.from(fragment.msgId).toString('hex');
    if (fragment.fragIndex === 0) this.#noteFirstTime(idHex, timeMs);
    let error: SalaError | undefined;
    let message: Uint8Array | undefined;
    try {
      message = reassembler.add(this.key, fragment, nowMs);
    } catch (err) {
      error = err as SalaError;
    }
    if (message !== undefined) {
      this.#ready.set(firstSeq, { id: idHex, bytes: message, atMs: this.#firstTimes.get(idHex) ?? timeMs });
      this.#firstTimes.delete(idHex);
    }
    const step: StreamStep = { delivered: this.#advance(), lost };
    if (error !== undefined) step.error = error;
    return step;
  }

  /**
   * The sender says `seq` is the last seq it sent on this stream: wait for everything up to it, so a
   * lost last datagram is asked for.
   */
  noteHighest(seq: number, nowMs: number): StreamStep {
    const lost = seq < this.#base ? 0 : this.#extendTo(seq, nowMs);
    return { delivered: lost > 0 ? this.#advance() : [], lost };
  }

  /** Gives up on seqs missing for `timeoutMs`; returns what that releases. */
  expire(nowMs: number, timeoutMs: number): StreamStep {
    let lost = 0;
    for (const [seq, missing] of this.#missing) {
      if (nowMs - missing.sinceMs < timeoutMs) break; // appended in time order too
      this.#missing.delete(seq);
      this.#filled.add(seq);
      lost += 1;
    }
    return { delivered: lost > 0 ? this.#advance() : [], lost };
  }

  /**
   * Missing seqs due for a NACK: missing for `delayMs`, and not asked for (by us or another member)
   * within `retryMs`. Lowest first; the caller packs them with nackRangesFromSeqs.
   */
  nackCandidates(nowMs: number, delayMs: number, retryMs: number): number[] {
    const due: number[] = [];
    for (const [seq, missing] of this.#missing) {
      if (nowMs - missing.sinceMs < delayMs) break;
      if (missing.lastNackMs === undefined || nowMs - missing.lastNackMs >= retryMs) due.push(seq);
    }
    return due;
  }

  /** Records a NACK for these seqs (ours, or another member's: theirs makes ours unnecessary). */
  noteNacked(ranges: readonly NackRange[], nowMs: number): void {
    for (const { firstSeq, count } of ranges) {
      for (let seq = firstSeq; seq < firstSeq + count; seq += 1) {
        const missing = this.#missing.get(seq);
        if (missing !== undefined) missing.lastNackMs = nowMs;
      }
    }
  }

  /** When something next falls due (a NACK or a give-up), in monotonic ms; undefined with nothing missing. */
  nextDueMs(delayMs: number, retryMs: number, timeoutMs: number): number | undefined {
    let due: number | undefined;
    for (const missing of this.#missing.values()) {
      const nack = missing.lastNackMs === undefined ? missing.sinceMs + delayMs : missing.lastNackMs + retryMs;
      const at = Math.min(nack, missing.sinceMs + timeoutMs);
      if (due === undefined || at < due) due = at;
    }
    return due;
  }

  /** Forgets what is in flight (the stream is being dropped). */
  clear(reassembler: Reassembler): void {
    reassembler.dropSender(this.key);
    this.#missing.clear();
    this.#filled.clear();
    this.#ready.clear();
    this.#firstTimes.clear();
  }

  /** Waits for every seq up to `seq`; returns how many old seqs had to be given up to stay within maxSpan. */
  #extendTo(seq: number, nowMs: number): number {
    if (seq <= this.#highest) return 0;
    let lost = 0;
    const floor = seq - this.#maxSpan + 1;
    if (floor > this.#base) lost = this.#giveUpBelow(floor);
    for (let next = Math.max(this.#highest + 1, floor); next <= seq; next += 1) {
      this.#missing.set(next, { sinceMs: nowMs, lastNackMs: undefined });
    }
    this.#highest = seq;
    return lost;
  }

  /** Resolves everything below `floor` (> base); returns how many of those seqs were never received. */
  #giveUpBelow(floor: number): number {
    const span = floor - this.#base;
    let received = 0;
    for (const seq of this.#filled) {
      if (seq < floor) {
        this.#filled.delete(seq);
        received += 1;
      }
    }
    for (const seq of this.#missing.keys()) {
      if (seq >= floor) break;
      this.#missing.delete(seq);
    }
    this.#base = floor;
    if (this.#highest < floor - 1) this.#highest = floor - 1;
    return span - received;
  }

  #fill(seq: number): void {
    if (seq < this.#base || seq > this.#highest) return;
    this.#filled.add(seq);
    this.#missing.delete(seq);
  }

  #noteFirstTime(idHex: string, timeMs: number): void {
    const known = this.#firstTimes.get(idHex);
    if (known !== undefined && known <= timeMs) return;
    this.#firstTimes.delete(idHex);
    this.#firstTimes.set(idHex, timeMs);
    if (this.#firstTimes.size > MAX_FIRST_TIMES) {
      const oldest = this.#firstTimes.keys().next();
      if (oldest.done !== true) this.#firstTimes.delete(oldest.value);
    }
  }

  /** Moves `base` over resolved seqs and returns the complete messages that are now in turn. */
  #advance(): CompletedMessage[] {
    while (this.#filled.delete(this.#base)) this.#base += 1;
    if (this.#ready.size === 0) return [];
    const due: CompletedMessage[] = [];
    for (const firstSeq of [...this.#ready.keys()].sort((a, b) => a - b)) {
      if (firstSeq >= this.#base) break;
      const message = this.#ready.get(firstSeq);
      this.#ready.delete(firstSeq);
      if (message !== undefined) due.push(message);
    }
    return due;
  }
}
