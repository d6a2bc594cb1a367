import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_GROUP_FRAGMENT_BYTES } from '../../../../common/crypto/group-datagram.js';
import {
  DATA_BODY_OVERHEAD_BYTES,
  GROUP_DATAGRAM_TYPE,
  MAX_GROUP_FRAGMENTS,
  MAX_GROUP_MESSAGE_BYTES,
  MAX_NACK_RANGES,
  MAX_NACK_SEQS,
  REPAIR_BODY_OVERHEAD_BYTES,
  Reassembler,
  decodeGroupBody,
  encodeDataBody,
  encodeNackBody,
  encodeRepairBody,
  fragmentGroupMessage,
  nackRangesFromSeqs,
  type GroupFragment,
} from '../../../../common/wire/group-fragments.js';
import { catchSalaError } from '../../../helpers/errors.js';

const NOW_MS = 1_000_000;
const msgIdOf = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const INSTANCE = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

function fragmentsOf(message: Uint8Array, id = 1, size = 100): GroupFragment[] {
  return fragmentGroupMessage(msgIdOf(id), message, size);
}

describe('group message fragmentation', () => {
  it('splits an 8 KiB text into 8 fragments of at most MAX_GROUP_FRAGMENT_BYTES', () => {
    const message = Uint8Array.from(randomBytes(8 * 1024));
    const fragments = fragmentGroupMessage(msgIdOf(1), message, MAX_GROUP_FRAGMENT_BYTES);
    expect(fragments).toHaveLength(8);
    for (const [i, fragment] of fragments.entries()) {
      expect(fragment).toMatchObject({ fragIndex: i, fragCount: 8 });
      expect(fragment.bytes.length).toBeLessThanOrEqual(MAX_GROUP_FRAGMENT_BYTES);
    }
    expect(Buffer.concat(fragments.map((f) => f.bytes))).toEqual(Buffer.from(message));
  });

  it('makes one empty fragment of an empty message, and exact multiples without a trailing empty one', () => {
    expect(fragmentsOf(new Uint8Array(0))).toMatchObject([{ fragIndex: 0, fragCount: 1, bytes: new Uint8Array(0) }]);
    expect(fragmentsOf(new Uint8Array(300))).toHaveLength(3);
  });

  it('refuses a message receivers would not reassemble with SALA_E_MESSAGE_TOO_LARGE', () => {
    catchSalaError(() => fragmentsOf(new Uint8Array(MAX_GROUP_MESSAGE_BYTES + 1), 1, 2048), 'SALA_E_MESSAGE_TOO_LARGE');
    catchSalaError(() => fragmentsOf(new Uint8Array(MAX_GROUP_FRAGMENTS * 10 + 1), 1, 10), 'SALA_E_MESSAGE_TOO_LARGE');
    expect(fragmentGroupMessage(msgIdOf(1), new Uint8Array(MAX_GROUP_MESSAGE_BYTES), MAX_GROUP_FRAGMENT_BYTES)).toHaveLength(16);
  });

  it('rejects a message id that is not 16 bytes and a fragment size below 1', () => {
    catchSalaError(() => fragmentGroupMessage(new Uint8Array(15), new Uint8Array(1), 10), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => fragmentGroupMessage(msgIdOf(1), new Uint8Array(1), 0), 'SALA_E_GROUP_DATAGRAM_INVALID');
  });
});

describe('group datagram bodies', () => {
  const fragment: GroupFragment = { msgId: msgIdOf(7), fragIndex: 2, fragCount: 5, bytes: new Uint8Array([9, 8, 7]) };

  it('lays out DATA as msgId | fragIndex u16 | fragCount u16 | bytes', () => {
    const body = encodeDataBody(fragment);
    expect(Buffer.from(body)).toEqual(Buffer.concat([Buffer.from(msgIdOf(7)), Buffer.from([0, 2, 0, 5, 9, 8, 7])]));
    expect(body.length).toBe(DATA_BODY_OVERHEAD_BYTES + 3);
    expect(decodeGroupBody(GROUP_DATAGRAM_TYPE.DATA, body)).toEqual({ type: GROUP_DATAGRAM_TYPE.DATA, fragment });
  });

  it('lays out REPAIR as repairedSeq u64 then a DATA body', () => {
    const body = encodeRepairBody(0x0102030405, fragment);
    expect(body.length).toBe(REPAIR_BODY_OVERHEAD_BYTES + 3);
    expect(Buffer.from(body.subarray(0, 8))).toEqual(Buffer.from([0, 0, 0, 1, 2, 3, 4, 5]));
    expect(decodeGroupBody(GROUP_DATAGRAM_TYPE.REPAIR, body)).toEqual({ type: GROUP_DATAGRAM_TYPE.REPAIR, repairedSeq: 0x0102030405, fragment });
  });

  it('lays out NACK as target index | target instance | count | ranges', () => {
    const ranges = [{ firstSeq: 3, count: 2 }, { firstSeq: 10, count: 1 }];
    const body = encodeNackBody({ targetSenderIdx: 0x0102, targetInstance: INSTANCE, ranges });
    expect(Buffer.from(body)).toEqual(
      Buffer.from([1, 2, ...INSTANCE, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 10, 0, 1]),
    );
    expect(decodeGroupBody(GROUP_DATAGRAM_TYPE.NACK, body)).toEqual({
      type: GROUP_DATAGRAM_TYPE.NACK,
      targetSenderIdx: 0x0102,
      targetInstance: INSTANCE,
      ranges,
    });
  });

  it('rejects truncated DATA and REPAIR bodies', () => {
    const data = encodeDataBody(fragment);
    for (let length = 0; length < DATA_BODY_OVERHEAD_BYTES; length += 1) {
      catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.DATA, data.subarray(0, length)), 'SALA_E_GROUP_DATAGRAM_INVALID');
    }
    const repair = encodeRepairBody(1, fragment);
    for (let length = 0; length < REPAIR_BODY_OVERHEAD_BYTES; length += 1) {
      catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.REPAIR, repair.subarray(0, length)), 'SALA_E_GROUP_DATAGRAM_INVALID');
    }
  });

  it('rejects a fragment index at or over its count, and a count of 0 or over 16', () => {
    for (const [fragIndex, fragCount] of [[5, 5], [0, 0], [0, MAX_GROUP_FRAGMENTS + 1], [65535, 2]] as const) {
      const body = Buffer.from(encodeDataBody(fragment));
      body.writeUInt16BE(fragIndex, 16);
      body.writeUInt16BE(fragCount, 18);
      catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.DATA, body), 'SALA_E_GROUP_DATAGRAM_INVALID');
      catchSalaError(() => encodeDataBody({ ...fragment, fragIndex, fragCount }), 'SALA_E_GROUP_DATAGRAM_INVALID');
    }
  });

  it('rejects a repaired seq beyond 2^53', () => {
    const body = Buffer.from(encodeRepairBody(1, fragment));
    body.writeBigUInt64BE(2n ** 53n, 0);
    catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.REPAIR, body), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => encodeRepairBody(-1, fragment), 'SALA_E_GROUP_DATAGRAM_INVALID');
  });

  it('rejects NACKs whose length, range count, order or total is wrong', () => {
    const good = encodeNackBody({ targetSenderIdx: 1, targetInstance: INSTANCE, ranges: [{ firstSeq: 0, count: 1 }] });
    catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.NACK, good.subarray(0, good.length - 1)), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.NACK, Buffer.concat([good, Buffer.from([0])])), 'SALA_E_GROUP_DATAGRAM_INVALID');
    const zeroRanges = Buffer.from(good.subarray(0, 11));
    zeroRanges[10] = 0;
    catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.NACK, zeroRanges), 'SALA_E_GROUP_DATAGRAM_INVALID');

    const bad = [
      [],
      [{ firstSeq: 5, count: 1 }, { firstSeq: 5, count: 1 }],
      [{ firstSeq: 5, count: 3 }, { firstSeq: 6, count: 1 }],
      [{ firstSeq: 9, count: 1 }, { firstSeq: 2, count: 1 }],
      [{ firstSeq: 0, count: 0 }],
      [{ firstSeq: 0, count: MAX_NACK_SEQS + 1 }],
      [{ firstSeq: 0, count: 40 }, { firstSeq: 100, count: 40 }],
      Array.from({ length: MAX_NACK_RANGES + 1 }, (_, i) => ({ firstSeq: i * 2, count: 1 })),
      [{ firstSeq: Number.MAX_SAFE_INTEGER, count: 2 }],
    ];
    for (const ranges of bad) {
      catchSalaError(() => encodeNackBody({ targetSenderIdx: 1, targetInstance: INSTANCE, ranges }), 'SALA_E_GROUP_DATAGRAM_INVALID');
    }
    // The decoder applies the same rules to bytes built by hand.
    const overlapping = Buffer.from(encodeNackBody({ targetSenderIdx: 1, targetInstance: INSTANCE, ranges: [{ firstSeq: 5, count: 3 }, { firstSeq: 9, count: 1 }] }));
    overlapping.writeBigUInt64BE(6n, 21);
    catchSalaError(() => decodeGroupBody(GROUP_DATAGRAM_TYPE.NACK, overlapping), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => encodeNackBody({ targetSenderIdx: 70_000, targetInstance: INSTANCE, ranges: [{ firstSeq: 0, count: 1 }] }), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => encodeNackBody({ targetSenderIdx: 1, targetInstance: new Uint8Array(7), ranges: [{ firstSeq: 0, count: 1 }] }), 'SALA_E_GROUP_DATAGRAM_INVALID');
  });

  it('compresses missing seqs into ranges and keeps what fits one NACK', () => {
    expect(nackRangesFromSeqs([7, 3, 4, 5, 9, 4])).toEqual([{ firstSeq: 3, count: 3 }, { firstSeq: 7, count: 1 }, { firstSeq: 9, count: 1 }]);
    const many = nackRangesFromSeqs(Array.from({ length: 500 }, (_, i) => i));
    expect(many).toEqual([{ firstSeq: 0, count: MAX_NACK_SEQS }]);
    const scattered = nackRangesFromSeqs(Array.from({ length: 100 }, (_, i) => i * 3));
    expect(scattered).toHaveLength(MAX_NACK_RANGES);
    expect(() => encodeNackBody({ targetSenderIdx: 0, targetInstance: INSTANCE, ranges: scattered })).not.toThrow();
  });
});

describe('Reassembler', () => {
  it('reassembles fragments given in any order with any duplicates', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1500 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (message, order, duplicates) => {
          const fragments = fragmentsOf(message);
          const sequence = [...fragments];
          // Shuffle by the generated keys, then sprinkle duplicates.
          for (let i = sequence.length - 1; i > 0; i -= 1) {
            const j = (order[i] ?? 0) % (i + 1);
            [sequence[i], sequence[j]] = [sequence[j] as GroupFragment, sequence[i] as GroupFragment];
          }
          for (const d of duplicates) sequence.splice(d % (sequence.length + 1), 0, fragments[d % fragments.length] as GroupFragment);
          const reassembler = new Reassembler();
          const outputs = sequence.map((f) => reassembler.add('alice', f, NOW_MS)).filter((m) => m !== undefined);
          expect(outputs).toHaveLength(1);
          expect(Buffer.from(outputs[0] as Uint8Array)).toEqual(Buffer.from(message));
          expect(reassembler.partialCount).toBe(0);
          expect(reassembler.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps messages from different senders with the same id apart', () => {
    const reassembler = new Reassembler();
    const a = fragmentsOf(new Uint8Array(150).fill(1));
    const b = fragmentsOf(new Uint8Array(150).fill(2));
    expect(reassembler.add('a', a[0] as GroupFragment, NOW_MS)).toBeUndefined();
    expect(reassembler.add('b', b[1] as GroupFragment, NOW_MS)).toBeUndefined();
    expect(reassembler.add('a', a[1] as GroupFragment, NOW_MS)?.[0]).toBe(1);
    expect(reassembler.add('b', b[0] as GroupFragment, NOW_MS)?.[0]).toBe(2);
  });

  it('does not deliver a message twice when a fragment arrives again after completion', () => {
    const reassembler = new Reassembler();
    const [first, second] = fragmentsOf(new Uint8Array(150)) as [GroupFragment, GroupFragment];
    reassembler.add('a', first, NOW_MS);
    expect(reassembler.add('a', second, NOW_MS)).toBeDefined();
    expect(reassembler.add('a', second, NOW_MS + 1)).toBeUndefined();
    expect(reassembler.add('a', first, NOW_MS + 2)).toBeUndefined();
    expect(reassembler.partialCount).toBe(0);
    const [single] = fragmentsOf(new Uint8Array(5), 2) as [GroupFragment];
    expect(reassembler.add('a', single, NOW_MS)).toBeDefined();
    expect(reassembler.add('a', single, NOW_MS)).toBeUndefined();
  });

  it('rejects a fragment whose count contradicts earlier fragments and drops the message', () => {
    const reassembler = new Reassembler();
    const [first, second] = fragmentsOf(new Uint8Array(150)) as [GroupFragment, GroupFragment];
    reassembler.add('a', first, NOW_MS);
    catchSalaError(() => reassembler.add('a', { ...second, fragCount: 3 }, NOW_MS), 'SALA_E_GROUP_DATAGRAM_INVALID');
    expect(reassembler.partialCount).toBe(0);
    expect(reassembler.bufferedBytes).toBe(0);
    reassembler.add('a', first, NOW_MS);
    catchSalaError(() => reassembler.add('a', { ...first, fragIndex: 0, fragCount: 1 }, NOW_MS), 'SALA_E_GROUP_DATAGRAM_INVALID');
    expect(reassembler.partialCount).toBe(0);
  });

  it('rejects a fragment index at or over the count', () => {
    const reassembler = new Reassembler();
    catchSalaError(() => reassembler.add('a', { msgId: msgIdOf(1), fragIndex: 2, fragCount: 2, bytes: new Uint8Array(1) }, NOW_MS), 'SALA_E_GROUP_DATAGRAM_INVALID');
    catchSalaError(() => reassembler.add('a', { msgId: msgIdOf(1), fragIndex: 0, fragCount: 17, bytes: new Uint8Array(1) }, NOW_MS), 'SALA_E_GROUP_DATAGRAM_INVALID');
    expect(reassembler.partialCount).toBe(0);
  });

  it('rejects a message that grows past maxMessageBytes', () => {
    const reassembler = new Reassembler({ maxMessageBytes: 250 });
    const msgId = msgIdOf(1);
    reassembler.add('a', { msgId, fragIndex: 0, fragCount: 3, bytes: new Uint8Array(200) }, NOW_MS);
    catchSalaError(() => reassembler.add('a', { msgId, fragIndex: 1, fragCount: 3, bytes: new Uint8Array(100) }, NOW_MS), 'SALA_E_GROUP_DATAGRAM_INVALID');
    expect(reassembler.bufferedBytes).toBe(0);
  });

  it('drops partial messages older than timeoutMs', () => {
    const reassembler = new Reassembler({ timeoutMs: 1_000 });
    const [first, second] = fragmentsOf(new Uint8Array(150)) as [GroupFragment, GroupFragment];
    reassembler.add('a', first, NOW_MS);
    expect(reassembler.evictExpired(NOW_MS + 999)).toBe(0);
    expect(reassembler.add('a', second, NOW_MS + 1_000)).toBeUndefined();
    expect(reassembler.partialCount).toBe(1);
    expect(reassembler.evictExpired(NOW_MS + 2_000)).toBe(1);
    expect(reassembler.bufferedBytes).toBe(0);
  });

  it('holds at most maxPartialMessages, dropping the oldest', () => {
    const reassembler = new Reassembler({ maxPartialMessages: 4, maxPartialMessagesPerSender: 100 });
    for (let id = 0; id < 10; id += 1) {
      reassembler.add(`s${id}`, { msgId: msgIdOf(id), fragIndex: 0, fragCount: 2, bytes: new Uint8Array(10) }, NOW_MS + id);
    }
    expect(reassembler.partialCount).toBe(4);
    expect(reassembler.bufferedBytes).toBe(40);
    expect(reassembler.add('s9', { msgId: msgIdOf(9), fragIndex: 1, fragCount: 2, bytes: new Uint8Array(1) }, NOW_MS + 10)).toHaveLength(11);
    expect(reassembler.add('s0', { msgId: msgIdOf(0), fragIndex: 1, fragCount: 2, bytes: new Uint8Array(1) }, NOW_MS + 10)).toBeUndefined();
  });

  it('lets one sender push out only its own partial messages', () => {
    const reassembler = new Reassembler({ maxPartialMessages: 10, maxPartialMessagesPerSender: 2 });
    reassembler.add('honest', { msgId: msgIdOf(200), fragIndex: 0, fragCount: 2, bytes: new Uint8Array(10) }, NOW_MS);
    for (let id = 0; id < 50; id += 1) {
      reassembler.add('flooder', { msgId: msgIdOf(id), fragIndex: 0, fragCount: 2, bytes: new Uint8Array(10) }, NOW_MS);
    }
    expect(reassembler.partialCount).toBe(3);
    expect(reassembler.add('honest', { msgId: msgIdOf(200), fragIndex: 1, fragCount: 2, bytes: new Uint8Array(1) }, NOW_MS)).toHaveLength(11);
  });

  it('never buffers more than maxBufferedBytes', () => {
    const reassembler = new Reassembler({ maxBufferedBytes: 2_000, maxMessageBytes: 1_000, maxPartialMessagesPerSender: 1_000, maxPartialMessages: 1_000 });
    for (let id = 0; id < 200; id += 1) {
      reassembler.add(`s${id % 7}`, { msgId: msgIdOf(id), fragIndex: 0, fragCount: 4, bytes: new Uint8Array(300) }, NOW_MS);
      expect(reassembler.bufferedBytes).toBeLessThanOrEqual(2_000);
    }
    expect(reassembler.partialCount).toBe(6);
  });

  it('remembers at most maxCompletedRemembered delivered messages, for completedTtlMs', () => {
    const reassembler = new Reassembler({ maxCompletedRemembered: 10, completedTtlMs: 5_000 });
    for (let id = 0; id < 50; id += 1) reassembler.add('a', { msgId: msgIdOf(id), fragIndex: 0, fragCount: 1, bytes: new Uint8Array(1) }, NOW_MS);
    expect(reassembler.completedCount).toBe(10);
    reassembler.evictExpired(NOW_MS + 5_000);
    expect(reassembler.completedCount).toBe(0);
  });

  it('forgets a sender’s partial messages on dropSender', () => {
    const reassembler = new Reassembler();
    reassembler.add('a', { msgId: msgIdOf(1), fragIndex: 0, fragCount: 2, bytes: new Uint8Array(10) }, NOW_MS);
    reassembler.add('b', { msgId: msgIdOf(1), fragIndex: 0, fragCount: 2, bytes: new Uint8Array(10) }, NOW_MS);
    reassembler.dropSender('a');
    expect(reassembler.partialCount).toBe(1);
    expect(reassembler.bufferedBytes).toBe(10);
  });

  it('rejects bad options with SALA_E_CONFIG_INVALID', () => {
    catchSalaError(() => new Reassembler({ maxPartialMessages: 0 }), 'SALA_E_CONFIG_INVALID');
    catchSalaError(() => new Reassembler({ maxBufferedBytes: 100, maxMessageBytes: 200 }), 'SALA_E_CONFIG_INVALID');
    catchSalaError(() => new Reassembler({ timeoutMs: Number.NaN }), 'SALA_E_CONFIG_INVALID');
  });
});
