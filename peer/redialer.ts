import { Backoff, DEFAULTS } from '../common/index.js';

export interface RedialerOptions {
  /** Tries to reach the user; resolves true when a link is up (or nothing waits for them any more). */
  attempt: (user: string) => Promise<boolean>;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Keeps trying to reach users who have messages waiting, with exponential backoff and jitter per
 * user, until a link is up. A sighting (directory, mDNS) or a new message tries at once and starts
 * the backoff again, so a peer that comes back is reached within moments, not at the next slot.
 */
export class Redialer {
  readonly #options: RedialerOptions;
  readonly #pending = new Map<string, { backoff: Backoff; timer: NodeJS.Timeout | undefined; isRunning: boolean; isAgain: boolean }>();
  #isClosed = false;

  constructor(options: RedialerOptions) {
    this.#options = options;
  }

  /** Try now (and keep trying while it fails). */
  poke(user: string): void {
    if (this.#isClosed) return;
    let state = this.#pending.get(user);
    if (state === undefined) {
      state = {
        backoff: new Backoff({
          initialDelayMs: this.#options.initialDelayMs ?? DEFAULTS.peerRedialInitialDelayMs,
          maxDelayMs: this.#options.maxDelayMs ?? DEFAULTS.peerRedialMaxDelayMs,
          jitter: 0.5,
        }),
        timer: undefined,
        isRunning: false,
        isAgain: false,
      };
      this.#pending.set(user, state);
    } else {
      state.backoff.reset();
    }
    clearTimeout(state.timer);
    state.timer = undefined;
    void this.#run(user);
  }

  /** Nothing waits for this user any more. */
  forget(user: string): void {
    const state = this.#pending.get(user);
    if (state === undefined) return;
    clearTimeout(state.timer);
    this.#pending.delete(user);
  }

  close(): void {
    this.#isClosed = true;
    for (const state of this.#pending.values()) clearTimeout(state.timer);
    this.#pending.clear();
  }

  async #run(user: string): Promise<void> {
    const state = this.#pending.get(user);
    if (state === undefined) return;
    if (state.isRunning) {
      state.isAgain = true; // a sighting during an attempt: try once more right after it
      return;
    }
    state.isRunning = true;
    let isDone = false;
    try {
      isDone = await this.#options.attempt(user);
    } catch {
      isDone = false;
    }
    state.isRunning = false;
    if (this.#isClosed || this.#pending.get(user) !== state) return;
    if (isDone) {
      this.#pending.delete(user);
      return;
    }
    if (state.isAgain) {
      state.isAgain = false;
      void this.#run(user);
      return;
    }
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void this.#run(user);
    }, state.backoff.next());
    state.timer.unref();
  }
}
