import { ConfigInvalidError } from '../errors.js';

export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number;
  random?: () => number;
}

/**
 * Exponential backoff with jitter, so a classroom of peers that lost the server at the same moment
 * does not hammer it in lock-step when it comes back: initial × 2^attempt, capped, ± jitter.
 */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    if (!(options.initialDelayMs > 0)) throw new ConfigInvalidError('initialDelayMs', 'must be positive');
    if (!(options.maxDelayMs >= options.initialDelayMs)) throw new ConfigInvalidError('maxDelayMs', 'must be at least initialDelayMs');
    if (!(options.jitter >= 0 && options.jitter < 1)) throw new ConfigInvalidError('jitter', 'must be in [0, 1)');
    this.#options = { random: Math.random, ...options };
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt; each call counts one more attempt. */
  next(): number {
    const { initialDelayMs, maxDelayMs, jitter, random } = this.#options;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    const factor = 1 - jitter + 2 * jitter * random();
    return Math.max(0, Math.round(Math.min(maxDelayMs, base * factor)));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
