/** Small helpers of the chat benchmark's peer process. */

/** A text of exactly `bytes` ASCII bytes that starts with `tag` (so each message is distinct). */
export function textOf(tag: string, bytes: number): string {
  return `${tag} `.padEnd(bytes, 'x').slice(0, Math.max(bytes, tag.length));
}

/** Resolves the current waiter on every Peer event that may let a loop go on. */
export class Wakeup {
  #wake: (() => void) | undefined;

  nudge(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits for the next nudge, at most `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.nudge(), Math.max(0, ms));
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
