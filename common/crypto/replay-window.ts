import { ConfigInvalidError, SalaError } from '../errors.js';

/**
 * Replay protection for group datagrams (SECURITY.md H3): one sliding window per (epoch, senderIdx,
 * instance) over the sender's seq numbers.
 */

/** Seqs this far below the highest seen are refused as too old (IPsec-style anti-replay window). */
export const REPLAY_WINDOW_BITS = 1024;
const WORDS = REPLAY_WINDOW_BITS / 32;

export type ReplayVerdict = 'fresh' | 'duplicate' | 'too-old';

function checkSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', `A group datagram was dropped: its seq ${String(seq)} is out of range.`);
  }
}

/**
 * A 1024-bit sliding bitmap anchored at the highest seq marked so far. Bit `seq % 1024` of a ring
 * of 32 words says whether `seq` was seen, for the 1024 seqs ending at the highest one; anything
 * lower is too old. 136 bytes whatever the traffic, and O(1) per seq except a forward jump, which
 * clears the bits it passes (at most 32 words).
 *
 * check() never changes the window, so a datagram is only marked after it has been fully
 * authenticated (a forgery must not advance the window and push real datagrams out of it).
 */
export class ReplayWindow {
  #highest = -1;
  readonly #bits = new Uint32Array(WORDS);

  /** The highest seq marked, or -1 before the first. */
  get highestSeq(): number {
    return this.#highest;
  }

  check(seq: number): ReplayVerdict {
    checkSeq(seq);
    if (seq > this.#highest) return 'fresh';
    if (this.#highest - seq >= REPLAY_WINDOW_BITS) return 'too-old';
    const index = seq % REPLAY_WINDOW_BITS;
    return (this.#bits[index >>> 5] ?? 0) & (1 << (index & 31)) ? 'duplicate' : 'fresh';
  }

  /** Marks `seq` as seen if it is fresh; returns the verdict check() gave before marking. */
  mark(seq: number): ReplayVerdict {
    const verdict = this.check(seq);
    if (verdict !== 'fresh') return verdict;
    if (seq > this.#highest) this.#slideTo(seq);
    const index = seq % REPLAY_WINDOW_BITS;
    this.#bits[index >>> 5] = (this.#bits[index >>> 5] ?? 0) | (1 << (index & 31));
    return verdict;
  }

  /** Moves the top of the window to `seq`, clearing the bits of the seqs it passes over. */
  #slideTo(seq: number): void {
    if (seq - this.#highest >= REPLAY_WINDOW_BITS) {
      this.#bits.fill(0);
    } else {
      let next = this.#highest + 1;
      while (next <= seq) {
        const index = next % REPLAY_WINDOW_BITS;
        if ((index & 31) === 0 && next + 31 <= seq) {
          this.#bits[index >>> 5] = 0;
          next += 32;
        } else {
          this.#bits[index >>> 5] = (this.#bits[index >>> 5] ?? 0) & ~(1 << (index & 31));
          next += 1;
        }
      }
    }
    this.#highest = seq;
  }
}

export interface SenderWindowsOptions {
  /** Senders (epoch, senderIdx pairs, as the caller names them) held at once; least recently marked go first. */
  maxSenders?: number;
  /** Instances (process runs) kept per sender; the sender's least recently marked instance goes first. */
  maxInstancesPerSender?: number;
}

export const SENDER_WINDOWS_DEFAULTS = Object.freeze({ maxSenders: 1024, maxInstancesPerSender: 4 });

/**
 * Replay windows per sender and instance, in bounded memory: at most maxSenders ×
 * maxInstancesPerSender windows of ~136 bytes (about 560 KiB with the defaults).
 *
 * Windows are created only by mark(), which the opener calls after AEAD and signature passed, so
 * only real members ever cost memory, and garbage never evicts anyone. Forgetting a window lets
 * its last 30 s of datagrams be replayed (the ±30 s time check bounds it), so eviction is arranged
 * to hit the one who causes it: an instance is pushed out only by newer instances of the same
 * sender (an honest peer restarts far less than 4 times in 30 s), and a sender only when more than
 * maxSenders members of all groups and epochs are active, which the group size cap rules out.
 */
export class SenderWindows {
  readonly #maxSenders: number;
  readonly #maxInstances: number;
  /** Least recently marked first, both levels. */
  readonly #senders = new Map<string, Map<string, ReplayWindow>>();

  constructor(options: SenderWindowsOptions = {}) {
    const o = { ...SENDER_WINDOWS_DEFAULTS, ...options };
    for (const [name, value] of Object.entries(o)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new ConfigInvalidError(name, 'must be a positive integer');
    }
    this.#maxSenders = o.maxSenders;
    this.#maxInstances = o.maxInstancesPerSender;
  }

  get senderCount(): number {
    return this.#senders.size;
  }

  get windowCount(): number {
    let count = 0;
    for (const instances of this.#senders.values()) count += instances.size;
    return count;
  }

  /** The verdict for `seq` without marking it or allocating anything; an unknown instance is fresh. */
  check(sender: string, instance: string, seq: number): ReplayVerdict {
    const window = this.#senders.get(sender)?.get(instance);
    if (window === undefined) {
      checkSeq(seq);
      return 'fresh';
    }
    return window.check(seq);
  }

  /** Marks `seq` seen, creating the window if needed; returns the verdict before marking. */
  mark(sender: string, instance: string, seq: number): ReplayVerdict {
    checkSeq(seq);
    let instances = this.#senders.get(sender);
    if (instances === undefined) {
      instances = new Map();
      if (this.#senders.size >= this.#maxSenders) this.#deleteFirst(this.#senders);
    } else {
      this.#senders.delete(sender);
    }
    this.#senders.set(sender, instances);

    let window = instances.get(instance);
    if (window === undefined) {
      window = new ReplayWindow();
      if (instances.size >= this.#maxInstances) this.#deleteFirst(instances);
    } else {
      instances.delete(instance);
    }
    instances.set(instance, window);
    return window.mark(seq);
  }

  deleteSender(sender: string): void {
    this.#senders.delete(sender);
  }

  clear(): void {
    this.#senders.clear();
  }

  #deleteFirst(map: Map<string, unknown>): void {
    const first = map.keys().next();
    if (first.done !== true) map.delete(first.value);
  }
}
