import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REPLAY_WINDOW_BITS, ReplayWindow, SenderWindows, type ReplayVerdict } from '../../../../common/crypto/replay-window.js';
import { catchSalaError } from '../../../helpers/errors.js';

/** The window's meaning, written as plainly as possible: every seq ever marked, and the highest. */
class ReferenceWindow {
  readonly #seen = new Set<number>();
  #highest = -1;

  check(seq: number): ReplayVerdict {
    if (seq > this.#highest) return 'fresh';
    if (this.#highest - seq >= REPLAY_WINDOW_BITS) return 'too-old';
    return this.#seen.has(seq) ? 'duplicate' : 'fresh';
  }

  mark(seq: number): ReplayVerdict {
    const verdict = this.check(seq);
    if (verdict === 'fresh') {
      this.#seen.add(seq);
      this.#highest = Math.max(this.#highest, seq);
    }
    return verdict;
  }
}

describe('ReplayWindow', () => {
  it('is 1024 seqs wide', () => {
    expect(REPLAY_WINDOW_BITS).toBe(1024);
  });

  it('accepts seq 0 first and refuses it the second time', () => {
    const window = new ReplayWindow();
    expect(window.highestSeq).toBe(-1);
    expect(window.mark(0)).toBe('fresh');
    expect(window.check(0)).toBe('duplicate');
    expect(window.mark(0)).toBe('duplicate');
  });

  it('does not mark on check', () => {
    const window = new ReplayWindow();
    expect(window.check(5)).toBe('fresh');
    expect(window.check(5)).toBe('fresh');
    expect(window.highestSeq).toBe(-1);
  });

  it('accepts seqs out of order inside the window, each once', () => {
    const window = new ReplayWindow();
    for (const seq of [10, 3, 7, 4, 9, 0]) expect(window.mark(seq)).toBe('fresh');
    for (const seq of [10, 3, 7, 4, 9, 0]) expect(window.check(seq)).toBe('duplicate');
    for (const seq of [1, 2, 5, 6, 8, 11]) expect(window.check(seq)).toBe('fresh');
  });

  it('refuses a seq 1024 below the highest as too old and accepts 1023 below', () => {
    const window = new ReplayWindow();
    window.mark(2000);
    expect(window.check(2000 - 1024)).toBe('too-old');
    expect(window.check(0)).toBe('too-old');
    expect(window.mark(2000 - 1023)).toBe('fresh');
  });

  it('forgets the seqs it slides past and keeps the ones still inside', () => {
    const window = new ReplayWindow();
    for (let seq = 0; seq < 1024; seq += 1) window.mark(seq);
    window.mark(1524);
    for (let seq = 0; seq <= 500; seq += 1) expect(window.check(seq)).toBe('too-old');
    for (let seq = 501; seq < 1024; seq += 1) expect(window.check(seq)).toBe('duplicate');
    for (let seq = 1024; seq < 1524; seq += 1) expect(window.check(seq)).toBe('fresh');
  });

  it('clears everything on a jump of a window or more', () => {
    const window = new ReplayWindow();
    for (let seq = 0; seq < 100; seq += 1) window.mark(seq);
    window.mark(5_000_000);
    expect(window.check(99)).toBe('too-old');
    for (let seq = 5_000_000 - 1023; seq < 5_000_000; seq += 1) expect(window.check(seq)).toBe('fresh');
    expect(window.check(5_000_000)).toBe('duplicate');
  });

  it('works up to Number.MAX_SAFE_INTEGER', () => {
    const window = new ReplayWindow();
    const top = Number.MAX_SAFE_INTEGER;
    expect(window.mark(top - 1)).toBe('fresh');
    expect(window.mark(top)).toBe('fresh');
    expect(window.check(top - 1)).toBe('duplicate');
    expect(window.check(top - 2)).toBe('fresh');
    expect(window.check(top - 1024)).toBe('too-old');
  });

  it('rejects seqs that are not safe non-negative integers', () => {
    const window = new ReplayWindow();
    for (const seq of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      catchSalaError(() => window.check(seq), 'SALA_E_GROUP_DATAGRAM_INVALID');
      catchSalaError(() => window.mark(seq), 'SALA_E_GROUP_DATAGRAM_INVALID');
    }
  });

  it('agrees with a set-based reference on any sequence of seqs', () => {
    const stepArb = fc.oneof(
      fc.nat({ max: 3000 }),
      fc.integer({ min: -1100, max: 1100 }).map((d) => ({ relative: d })),
      fc.constant({ relative: 2048 }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(stepArb, fc.boolean()), { maxLength: 400 }), (steps) => {
        const window = new ReplayWindow();
        const reference = new ReferenceWindow();
        for (const [step, isMark] of steps) {
          const seq = typeof step === 'number' ? step : Math.max(0, window.highestSeq + step.relative);
          if (isMark) expect(window.mark(seq)).toBe(reference.mark(seq));
          else expect(window.check(seq)).toBe(reference.check(seq));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('SenderWindows', () => {
  it('answers check() for an unknown sender without creating a window', () => {
    const windows = new SenderWindows();
    expect(windows.check('a', 'i1', 7)).toBe('fresh');
    expect(windows.senderCount).toBe(0);
    expect(windows.windowCount).toBe(0);
  });

  it('keeps one window per sender and instance', () => {
    const windows = new SenderWindows();
    expect(windows.mark('a', 'i1', 7)).toBe('fresh');
    expect(windows.check('a', 'i1', 7)).toBe('duplicate');
    expect(windows.check('a', 'i2', 7)).toBe('fresh');
    expect(windows.check('b', 'i1', 7)).toBe('fresh');
    expect(windows.mark('a', 'i1', 7)).toBe('duplicate');
  });

  it('holds at most maxSenders senders, forgetting the least recently marked', () => {
    const windows = new SenderWindows({ maxSenders: 3 });
    windows.mark('a', 'i', 1);
    windows.mark('b', 'i', 1);
    windows.mark('c', 'i', 1);
    windows.mark('a', 'i', 2);
    windows.mark('d', 'i', 1);
    expect(windows.senderCount).toBe(3);
    expect(windows.check('b', 'i', 1)).toBe('fresh');
    expect(windows.check('a', 'i', 1)).toBe('duplicate');
    expect(windows.check('c', 'i', 1)).toBe('duplicate');
  });

  it('makes a sender cycling instances push out only its own older instances', () => {
    const windows = new SenderWindows({ maxInstancesPerSender: 4 });
    windows.mark('honest', 'h', 1);
    for (let i = 0; i < 1000; i += 1) windows.mark('cycler', `i${i}`, 1);
    expect(windows.check('honest', 'h', 1)).toBe('duplicate');
    expect(windows.windowCount).toBe(5);
    expect(windows.check('cycler', 'i999', 1)).toBe('duplicate');
    expect(windows.check('cycler', 'i995', 1)).toBe('fresh');
  });

  it('stays within maxSenders × maxInstancesPerSender windows under any load', () => {
    const windows = new SenderWindows({ maxSenders: 16, maxInstancesPerSender: 2 });
    for (let i = 0; i < 10_000; i += 1) windows.mark(`s${i % 97}`, `i${i % 13}`, i);
    expect(windows.senderCount).toBeLessThanOrEqual(16);
    expect(windows.windowCount).toBeLessThanOrEqual(32);
  });

  it('forgets a sender on request and everything on clear()', () => {
    const windows = new SenderWindows();
    windows.mark('a', 'i', 1);
    windows.mark('b', 'i', 1);
    windows.deleteSender('a');
    expect(windows.check('a', 'i', 1)).toBe('fresh');
    windows.clear();
    expect(windows.senderCount).toBe(0);
  });

  it('rejects bad options with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => new SenderWindows({ maxSenders: 0 }), 'SALA_E_CONFIG_INVALID');
    catchSalaError(() => new SenderWindows({ maxInstancesPerSender: 1.5 }), 'SALA_E_CONFIG_INVALID');
  });
});
