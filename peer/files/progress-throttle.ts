/** Progress reports per transfer at most every this often (CONTRACT.md: a few times per second). */
export const PROGRESS_INTERVAL_MS = 250;

/** Decides when a transfer's progress is worth an event: the first, the last, and every 250 ms. */
export class ProgressThrottle {
  readonly #lastAt = new Map<string, number>();
  readonly #intervalMs: number;

  constructor(intervalMs = PROGRESS_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  shouldReport(transferId: string, isFinal: boolean, nowMs = performance.now()): boolean {
    const last = this.#lastAt.get(transferId);
    if (!isFinal && last !== undefined && nowMs - last < this.#intervalMs) return false;
    this.#lastAt.set(transferId, nowMs);
    return true;
  }

  forget(transferId: string): void {
    this.#lastAt.delete(transferId);
  }
}
