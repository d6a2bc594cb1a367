import type { LinkTarget } from './group-service-options.js';
import { monotonicMs } from './group-types.js';

export interface MulticastReachabilityOptions {
  /** After a membership change, our probe is multicast this long later (plus up to as much again, random), coalescing bursts of joins. */
  probeDelayMs: number;
  /** Members not heard by multicast this long after a change get a probe over a link. */
  checkDelayMs: number;
  /** The other members now, and those we already send to over links. */
  members: () => readonly LinkTarget[];
  isLinkOnly: (sessionId: string) => boolean;
  /** Multicasts a probe (false when the control budget refused it). */
  multicastProbe: () => void;
  /** Sends a probe to these members over links. */
  probeOverLinks: (members: readonly LinkTarget[]) => void;
  log: (unheard: readonly string[]) => void;
}

/**
 * Whether each member's multicast reaches us, not just whether ours comes back to us. The join's
 * self-test proves only that this computer multicasts; a Wi-Fi access point that drops multicast
 * between clients passes it and then loses every message. So after each membership change every
 * member multicasts one probe, and each of us notes whose datagrams arrived by multicast. A member
 * not heard that way gets a probe over a direct link, which makes it send to us over links from
 * then on (GroupChannel's link-only set): the group heals itself, one pair at a time, whatever
 * the network drops.
 */
export class MulticastReachability {
  readonly #options: MulticastReachabilityOptions;
  /** Session id → when its last datagram reached us by multicast (monotonic ms). */
  readonly #heardAtMs = new Map<string, number>();
  #probeTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #isClosed = false;

  constructor(options: MulticastReachabilityOptions) {
    this.#options = options;
  }

  /** A member's datagram arrived by multicast. */
  heard(sessionId: string, nowMs: number): void {
    this.#heardAtMs.set(sessionId, nowMs);
  }

  /**
   * Membership changed at `sinceMs` (or we just joined): probe, then check who was heard since.
   * `isProbing` false skips our own probe (the join's self-test already multicast one).
   */
  changed(sinceMs: number, isProbing: boolean): void {
    if (this.#isClosed) return;
    const { probeDelayMs, checkDelayMs } = this.#options;
    if (isProbing) {
      clearTimeout(this.#probeTimer);
      this.#probeTimer = setTimeout(() => this.#options.multicastProbe(), probeDelayMs * (1 + Math.random()));
      this.#probeTimer.unref();
    }
    clearTimeout(this.#checkTimer);
    const delayMs = Math.max(0, sinceMs + checkDelayMs - monotonicMs());
    this.#checkTimer = setTimeout(() => this.#check(sinceMs), delayMs);
    this.#checkTimer.unref();
  }

  close(): void {
    this.#isClosed = true;
    clearTimeout(this.#probeTimer);
    clearTimeout(this.#checkTimer);
    this.#heardAtMs.clear();
  }

  #check(sinceMs: number): void {
    if (this.#isClosed) return;
    const members = this.#options.members();
    const present = new Set(members.map((m) => m.sessionId));
    for (const sessionId of this.#heardAtMs.keys()) if (!present.has(sessionId)) this.#heardAtMs.delete(sessionId);
    const unheard = members.filter((m) => !this.#options.isLinkOnly(m.sessionId) && (this.#heardAtMs.get(m.sessionId) ?? Number.NEGATIVE_INFINITY) < sinceMs);
    if (unheard.length === 0) return;
    this.#options.log(unheard.map((m) => m.user));
    this.#options.probeOverLinks(unheard);
  }
}
