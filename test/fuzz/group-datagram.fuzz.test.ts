import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GROUP_HEADER_BYTES,
  GroupReceiveState,
  MAX_GROUP_DATAGRAM_BYTES,
  openGroupDatagram,
  sealGroupDatagram,
  type GroupOpenContext,
  type GroupRejectCode,
} from '../../common/crypto/group-datagram.js';
import { generateSigningKeyPair } from '../../common/crypto/signing.js';
import { initCrypto } from '../../common/crypto/sodium.js';
import { SalaError } from '../../common/errors.js';
import { GROUP_DATAGRAM_TYPE, Reassembler, decodeGroupBody, type GroupDatagramType } from '../../common/wire/group-fragments.js';

/**
 * Fast-check properties for group datagrams: whatever arrives, openGroupDatagram throws only
 * SalaError with a group code, and nothing short of a genuine sealed datagram reaches an Ed25519
 * verification (SECURITY.md test 12). The body decoder and the reassembler only throw
 * SALA_E_GROUP_DATAGRAM_INVALID and stay within their bounds.
 */

const GROUP_CODES: readonly string[] = [
  'SALA_E_GROUP_DATAGRAM_INVALID',
  'SALA_E_GROUP_NOT_MEMBER',
  'SALA_E_GROUP_KEY_UNKNOWN',
  'SALA_E_GROUP_REPLAY',
  'SALA_E_GROUP_RATE_LIMIT',
  'SALA_E_GROUP_AUTH_FAILED',
] satisfies readonly GroupRejectCode[];

const NOW_MS = 1_750_000_000_000;
const EPOCH = 3;

function expectGroupRejection(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SalaError);
    expect(GROUP_CODES).toContain((err as SalaError).code);
    return;
  }
  throw new Error('expected a rejection');
}

describe('group datagram fuzzing', () => {
  let groupId: Uint8Array;
  let groupKey: Uint8Array;
  let sigKeys: ReturnType<typeof generateSigningKeyPair>[];
  let valid: Uint8Array;

  const makeCtx = (): GroupOpenContext => ({
    isKnownGroup: (id) => Buffer.from(id).equals(Buffer.from(groupId)),
    groupKey: (_id, epoch) => (epoch === EPOCH ? groupKey : undefined),
    memberSigningKey: (epoch, idx) => (epoch === EPOCH ? sigKeys[idx]?.publicKey : undefined),
    nowMs: () => NOW_MS,
    state: new GroupReceiveState(),
  });

  beforeAll(async () => {
    await initCrypto();
    groupId = Uint8Array.from(randomBytes(16));
    groupKey = Uint8Array.from(randomBytes(32));
    sigKeys = [generateSigningKeyPair(), generateSigningKeyPair()];
    valid = sealGroupDatagram({
      groupKey,
      groupId,
      epoch: EPOCH,
      senderIdx: 1,
      instance: Uint8Array.from(randomBytes(8)),
      seq: 77,
      timeMs: NOW_MS,
      type: GROUP_DATAGRAM_TYPE.DATA,
      body: Uint8Array.from(randomBytes(200)),
      signingKey: (sigKeys[1] as { privateKey: Uint8Array }).privateKey,
    });
  });

  it('rejects arbitrary bytes with a group code and never verifies a signature', () => {
    const ctx = makeCtx();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_GROUP_DATAGRAM_BYTES + 50 }), (bytes) => {
        expectGroupRejection(() => openGroupDatagram(bytes, ctx));
      }),
      { numRuns: 2000 },
    );
    expect(ctx.state.stats.signatureVerifies).toBe(0);
  });

  it('rejects arbitrary bytes behind a plausible header and never verifies a signature', () => {
    const ctx = makeCtx();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_GROUP_DATAGRAM_BYTES - GROUP_HEADER_BYTES + 20 }), fc.nat(), (tail, seq) => {
        const bytes = Buffer.concat([valid.subarray(0, GROUP_HEADER_BYTES), tail]);
        bytes.writeBigUInt64BE(BigInt(seq), 32);
        expectGroupRejection(() => openGroupDatagram(bytes, ctx));
      }),
      { numRuns: 2000 },
    );
    expect(ctx.state.stats.signatureVerifies).toBe(0);
  });

  it('rejects any mutation of a genuine datagram without a signature verification', () => {
    const editArb = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(editArb, fc.nat({ max: 30 }), fc.uint8Array({ maxLength: 30 }), (edits, cut, extra) => {
        const ctx = makeCtx();
        let bytes = Buffer.from(valid);
        for (const [at, xor] of edits) bytes[at % bytes.length] = (bytes[at % bytes.length] ?? 0) ^ xor;
        bytes = Buffer.concat([bytes.subarray(0, bytes.length - cut), extra]);
        fc.pre(!bytes.equals(Buffer.from(valid)));
        expectGroupRejection(() => openGroupDatagram(bytes, ctx));
        expect(ctx.state.stats.signatureVerifies).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes arbitrary bodies of every type or throws SALA_E_GROUP_DATAGRAM_INVALID', () => {
    const typeArb = fc.constantFrom<GroupDatagramType>(GROUP_DATAGRAM_TYPE.DATA, GROUP_DATAGRAM_TYPE.NACK, GROUP_DATAGRAM_TYPE.REPAIR);
    fc.assert(
      fc.property(typeArb, fc.uint8Array({ maxLength: 400 }), (type, body) => {
        try {
          expect(decodeGroupBody(type, body).type).toBe(type);
        } catch (err) {
          expect(err).toBeInstanceOf(SalaError);
          expect((err as SalaError).code).toBe('SALA_E_GROUP_DATAGRAM_INVALID');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps the reassembler within its bounds under arbitrary fragments', () => {
    const fragmentArb = fc.record({
      sender: fc.constantFrom('a', 'b', 'c'),
      id: fc.nat({ max: 40 }),
      fragIndex: fc.nat({ max: 18 }),
      fragCount: fc.nat({ max: 18 }),
      bytes: fc.nat({ max: 1100 }),
      advanceMs: fc.nat({ max: 3000 }),
    });
    fc.assert(
      fc.property(fc.array(fragmentArb, { maxLength: 300 }), (steps) => {
        const limits = { maxPartialMessages: 8, maxPartialMessagesPerSender: 4, maxBufferedBytes: 20_000, maxMessageBytes: 16_384, timeoutMs: 10_000 };
        const reassembler = new Reassembler(limits);
        let nowMs = NOW_MS;
        for (const step of steps) {
          nowMs += step.advanceMs;
          const fragment = { msgId: new Uint8Array(16).fill(step.id), fragIndex: step.fragIndex, fragCount: step.fragCount, bytes: new Uint8Array(step.bytes) };
          try {
            const message = reassembler.add(step.sender, fragment, nowMs);
            if (message !== undefined) expect(message.length).toBeLessThanOrEqual(limits.maxMessageBytes);
          } catch (err) {
            expect(err).toBeInstanceOf(SalaError);
            expect((err as SalaError).code).toBe('SALA_E_GROUP_DATAGRAM_INVALID');
          }
          expect(reassembler.partialCount).toBeLessThanOrEqual(limits.maxPartialMessages);
          expect(reassembler.bufferedBytes).toBeLessThanOrEqual(limits.maxBufferedBytes);
          expect(reassembler.bufferedBytes).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
