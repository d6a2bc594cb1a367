import { describe, expect, it } from 'vitest';
import { fragmentGroupMessage, Reassembler, type GroupFragment } from '../../../../common/index.js';
import { SenderStream, type StreamStep } from '../../../../peer/groups/sender-stream.js';

/** A message of `fragCount` fragments whose first fragment the sender sent at `firstSeq`. */
function message(tag: number, fragCount: number, firstSeq: number): { seq: number; fragment: GroupFragment }[] {
  const msgId = new Uint8Array(16).fill(tag);
  const bytes = new Uint8Array(fragCount * 10).fill(tag);
  return fragmentGroupMessage(msgId, bytes, 10).map((fragment, i) => ({ seq: firstSeq + i, fragment }));
}

class Harness {
  readonly reassembler = new Reassembler();
  readonly delivered: number[] = [];
  lost = 0;
  readonly stream: SenderStream;

  constructor(firstSeq: number, maxSpan = 512) {
    this.stream = new SenderStream({ key: 's', senderIdx: 1, instance: new Uint8Array(8), firstSeq, maxSpan, nowMs: 0 });
  }

  give(datagrams: readonly { seq: number; fragment: GroupFragment }[], nowMs = 0): void {
    for (const { seq, fragment } of datagrams) this.#take(this.stream.accept({ seq, fragment, timeMs: 1_000 + seq }, this.reassembler, nowMs));
  }

  expire(nowMs: number, timeoutMs: number): void {
    this.#take(this.stream.expire(nowMs, timeoutMs));
  }

  #take(step: StreamStep): void {
    if (step.error !== undefined) throw step.error;
    this.lost += step.lost;
    for (const m of step.delivered) this.delivered.push(Number.parseInt(m.id.slice(0, 2), 16));
  }
}

describe('SenderStream', () => {
  it('delivers messages in the order they were sent, once each', () => {
    const h = new Harness(0);
    const all = [...message(1, 1, 0), ...message(2, 3, 1), ...message(3, 1, 4)];
    h.give(all);
    h.give(all); // duplicates (the replay window normally stops them; the stream copes anyway)
    expect(h.delivered).toEqual([1, 2, 3]);
    expect(h.stream.hasMissing).toBe(false);
  });

  it('holds a later message until the gap before it is filled, then delivers both in order', () => {
    const h = new Harness(0);
    const [m1, m2, m3] = [message(1, 1, 0), message(2, 1, 1), message(3, 1, 2)];
    h.give([...m1, ...m3]);
    expect(h.delivered).toEqual([1]);
    expect(h.stream.nackCandidates(100, 30, 250)).toEqual([1]);
    h.give(m2); // the REPAIR of seq 1
    expect(h.delivered).toEqual([1, 2, 3]);
  });

  it('waits for the rest of a message whose last fragments are missing, and asks for them', () => {
    const h = new Harness(0);
    const m = message(1, 4, 0);
    h.give(m.slice(0, 2));
    expect(h.stream.nackCandidates(100, 30, 250)).toEqual([2, 3]);
    h.give(m.slice(2));
    expect(h.delivered).toEqual([1]);
  });

  it('starts at the first seq it sees: no earlier message, and no part of one, is delivered or asked for', () => {
    const h = new Harness(5);
    // Message 1 began at seq 3, before this receiver's first seq 5.
    h.give([...message(1, 3, 3).slice(2), ...message(2, 1, 6)]);
    expect(h.delivered).toEqual([2]);
    expect(h.stream.nackCandidates(100, 0, 0)).toEqual([]);
    h.give(message(1, 3, 3)); // its repairs arrive later: still history
    expect(h.delivered).toEqual([2]);
  });

  it('asks for a gap only after the NACK delay, and again only after the retry interval', () => {
    const h = new Harness(0);
    h.give([...message(1, 1, 0), ...message(3, 1, 2)], 1_000);
    expect(h.stream.nackCandidates(1_010, 30, 250)).toEqual([]);
    expect(h.stream.nackCandidates(1_030, 30, 250)).toEqual([1]);
    h.stream.noteNacked([{ firstSeq: 1, count: 1 }], 1_030);
    expect(h.stream.nackCandidates(1_200, 30, 250)).toEqual([]);
    expect(h.stream.nackCandidates(1_280, 30, 250)).toEqual([1]);
    expect(h.stream.nextDueMs(30, 250, 2_000)).toBe(1_280);
  });

  it('gives up on a gap after the repair timeout and delivers what it held', () => {
    const h = new Harness(0);
    h.give([...message(1, 1, 0), ...message(3, 1, 2), ...message(4, 1, 3)], 1_000);
    h.expire(2_999, 2_000);
    expect(h.delivered).toEqual([1]);
    h.expire(3_000, 2_000);
    expect(h.delivered).toEqual([1, 3, 4]);
    expect(h.lost).toBe(1);
    h.give(message(2, 1, 1), 3_001); // too late: its turn has passed
    expect(h.delivered).toEqual([1, 3, 4]);
  });

  it('learns from the sender\'s tail announcement that its last datagram is missing', () => {
    const h = new Harness(0);
    h.give(message(1, 1, 0));
    expect(h.stream.noteHighest(1, 50)).toEqual({ delivered: [], lost: 0 });
    expect(h.stream.nackCandidates(100, 30, 250)).toEqual([1]);
    h.give(message(2, 1, 1));
    expect(h.delivered).toEqual([1, 2]);
  });

  it('waits for at most maxSpan seqs: a jump beyond gives up the oldest and counts them lost', () => {
    const h = new Harness(0, 8);
    h.give(message(1, 1, 0));
    h.give(message(2, 1, 20));
    expect(h.delivered).toEqual([1]);
    expect(h.lost).toBe(12); // seqs 1..12 went; 13..19 are still waited for
    expect(h.stream.missingCount).toBe(7);
  });
});
