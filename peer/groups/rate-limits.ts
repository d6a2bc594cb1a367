/**
 * Small limiters for the group layer. Both take the monotonic time as an argument, so they own no
 * timer and tests can drive them.
 */

/** A token bucket: `burst` tokens, refilled at `perSecond`. A clock stepping back refills nothing. */
export class TokenBucket {
  readonly #burst: number;
  readonly #perMs: number;
  #tokens: number;
  #updatedMs: number | undefined;

  constructor(burst: number, perSecond: number) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#tokens = burst;
  }

  /** Takes `count` tokens if all are there; otherwise takes nothing and returns false. */
  take(count: number, nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  /** How long until `count` tokens are there (0 when they are); Infinity above the burst. */
  waitMs(count: number, nowMs: number): number {
    this.#refill(nowMs);
    if (count > this.#burst) return Number.POSITIVE_INFINITY;
    return this.#tokens >= count ? 0 : Math.ceil((count - this.#tokens) / this.#perMs);
  }

  #refill(nowMs: number): void {
    if (this.#updatedMs !== undefined) {
      this.#tokens = Math.min(this.#burst, this.#tokens + Math.max(0, nowMs - this.#updatedMs) * this.#perMs);
    }
    this.#updatedMs = nowMs;
  }
}

/**
 * At most `max` warnings per `windowMs`; the rest are counted, and the next warning let through
 * says how many were held back. A flood of bad datagrams thus costs a few lines, not one per packet.
 */
export class WarningLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  #windowStartMs = Number.NEGATIVE_INFINITY;
  #inWindow = 0;
  #suppressed = 0;
  #suppressedTotal = 0;

  constructor(max: number, windowMs: number) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** Warnings held back so far, over the limiter's life. */
  get suppressedTotal(): number {
    return this.#suppressedTotal;
  }

  /** Returns undefined to drop this warning, or how many were dropped since the last one let through. */
  admit(nowMs: number): { suppressedBefore: number } | undefined {
    if (nowMs - this.#windowStartMs >= this.#windowMs) {
      this.#windowStartMs = nowMs;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.#max) {
      this.#suppressed += 1;
      this.#suppressedTotal += 1;
      return undefined;
    }
    this.#inWindow += 1;
    const suppressedBefore = this.#suppressed;
    this.#suppressed = 0;
    return { suppressedBefore };
  }
}
