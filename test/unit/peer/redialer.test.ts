import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Redialer } from '../../../peer/redialer.js';

function redialer(attempt: (user: string) => Promise<boolean>): Redialer {
  const r = new Redialer({ attempt, initialDelayMs: 10, maxDelayMs: 40 });
  onTestFinished(() => r.close());
  return r;
}

describe('Redialer', () => {
  it('tries at once and stops after a success', async () => {
    const attempt = vi.fn(async () => true);
    redialer(attempt).poke('bob');
    await vi.waitFor(() => expect(attempt).toHaveBeenCalledTimes(1));
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it('keeps trying with backoff until an attempt succeeds', async () => {
    let calls = 0;
    const attempt = vi.fn(async () => ++calls >= 4);
    redialer(attempt).poke('bob');
    await vi.waitFor(() => expect(attempt).toHaveBeenCalledTimes(4), { timeout: 2_000 });
  });

  it('runs one attempt per user at a time; a poke during an attempt asks for one more right after', async () => {
    let release: (value: boolean) => void = () => undefined;
    const attempt = vi.fn(() => new Promise<boolean>((resolve) => (release = resolve)));
    const r = redialer(attempt);
    r.poke('bob');
    r.poke('bob');
    r.poke('bob');
    expect(attempt).toHaveBeenCalledTimes(1);
    release(false);
    await vi.waitFor(() => expect(attempt).toHaveBeenCalledTimes(2));
    release(true);
  });

  it('stops trying for a forgotten user and after close', async () => {
    const attempt = vi.fn(async () => false);
    const r = redialer(attempt);
    r.poke('bob');
    await vi.waitFor(() => expect(attempt).toHaveBeenCalledTimes(1));
    r.forget('bob');
    r.close();
    r.poke('carol');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(attempt).toHaveBeenCalledTimes(1);
  });
});
