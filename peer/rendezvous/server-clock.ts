/**
 * Time as the rendezvous server tells it. Laptops keep wrong time (SECURITY.md H4), so tickets and
 * group messages are judged by server time: the server's clock at the last sync plus the local
 * monotonic clock since then, which no wall-clock change can move.
 */
export class ServerClock {
  #serverMsAtSync: number | undefined;
  #monotonicAtSync = 0;

  sync(serverTimeMs: number): void {
    this.#serverMsAtSync = serverTimeMs;
    this.#monotonicAtSync = performance.now();
  }

  get isSynced(): boolean {
    return this.#serverMsAtSync !== undefined;
  }

  /** Server time now; the local clock until the first sync. */
  now(): number {
    if (this.#serverMsAtSync === undefined) return Date.now();
    return Math.round(this.#serverMsAtSync + (performance.now() - this.#monotonicAtSync));
  }

  /** Server time minus the local clock, in ms (what the laptop's clock is off by). */
  offsetMs(): number {
    return this.now() - Date.now();
  }
}
