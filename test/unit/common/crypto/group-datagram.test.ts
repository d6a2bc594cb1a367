import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GROUP_CLOCK_SKEW_MS,
  GROUP_HEADER_BYTES,
  GroupRateBuckets,
  GroupReceiveState,
  MAX_GROUP_BODY_BYTES,
  MAX_GROUP_DATAGRAM_BYTES,
  MAX_GROUP_FRAGMENT_BYTES,
  MIN_GROUP_DATAGRAM_BYTES,
  decodeGroupHeader,
  deriveSenderKey,
  generateGroupInstance,
  openGroupDatagram,
  sealGroupDatagram,
  type GroupOpenContext,
  type GroupReceiveStateOptions,
  type SealGroupDatagramParams,
} from '../../../../common/crypto/group-datagram.js';
import { generateSigningKeyPair, verifyDetached } from '../../../../common/crypto/signing.js';
import { initCrypto, sodium } from '../../../../common/crypto/sodium.js';
import { SalaError, type SalaErrorCode } from '../../../../common/errors.js';
import {
  GROUP_DATAGRAM_TYPE,
  Reassembler,
  decodeGroupBody,
  encodeDataBody,
  encodeNackBody,
  encodeRepairBody,
  fragmentGroupMessage,
  type GroupDatagramType,
} from '../../../../common/wire/group-fragments.js';
import type { KeyPair } from '../../../../common/crypto/noise/handshake-state.js';
import { catchSalaError } from '../../../helpers/errors.js';

const NOW_MS = 1_750_000_000_000;
const EPOCH = 7;

interface Member {
  signing: KeyPair;
  instance: Uint8Array;
}

interface Fixture {
  groupId: Uint8Array;
  /** epoch → key; only these epochs are accepted. */
  keys: Map<number, Uint8Array>;
  /** epoch → senderIdx → member. */
  roster: Map<number, Map<number, Member>>;
  members: Member[];
  clock: { nowMs: number };
}

function makeFixture(memberCount = 3): Fixture {
  const members = Array.from({ length: memberCount }, () => ({
    signing: generateSigningKeyPair(),
    instance: Uint8Array.from(randomBytes(8)),
  }));
  return {
    groupId: Uint8Array.from(randomBytes(16)),
    keys: new Map([[EPOCH, Uint8Array.from(randomBytes(32))]]),
    roster: new Map([[EPOCH, new Map(members.map((m, i) => [i, m]))]]),
    members,
    clock: { nowMs: NOW_MS },
  };
}

function makeCtx(f: Fixture, options: GroupReceiveStateOptions = {}): GroupOpenContext & { state: GroupReceiveState } {
  return {
    isKnownGroup: (groupId) => Buffer.from(groupId).equals(Buffer.from(f.groupId)),
    groupKey: (_groupId, epoch) => f.keys.get(epoch),
    memberSigningKey: (epoch, senderIdx) => f.roster.get(epoch)?.get(senderIdx)?.signing.publicKey,
    nowMs: () => f.clock.nowMs,
    state: new GroupReceiveState(options),
  };
}

function seal(f: Fixture, overrides: Partial<SealGroupDatagramParams> & { from?: number } = {}): Uint8Array {
  const { from = 0, ...rest } = overrides;
  const member = f.members[from] as Member;
  const epoch = rest.epoch ?? EPOCH;
  return sealGroupDatagram({
    groupKey: f.keys.get(epoch) ?? new Uint8Array(32),
    groupId: f.groupId,
    epoch,
    senderIdx: from,
    instance: member.instance,
    seq: 0,
    timeMs: f.clock.nowMs,
    type: GROUP_DATAGRAM_TYPE.DATA,
    body: new TextEncoder().encode('hello group'),
    signingKey: member.signing.privateKey,
    ...rest,
  });
}

function openCode(bytes: Uint8Array, ctx: GroupOpenContext): SalaErrorCode | 'ok' {
  try {
    openGroupDatagram(bytes, ctx);
    return 'ok';
  } catch (err) {
    if (!(err instanceof SalaError)) throw err;
    return err.code;
  }
}

describe('group datagrams', () => {
  beforeAll(initCrypto);

  describe('sizes', () => {
    it('leaves 1072 body bytes and 1044 fragment bytes in a 1200-byte datagram', () => {
      expect(MAX_GROUP_DATAGRAM_BYTES).toBe(1200);
      expect(GROUP_HEADER_BYTES).toBe(48);
      expect(MAX_GROUP_BODY_BYTES).toBe(1200 - 48 - 64 - 16);
      expect(MAX_GROUP_FRAGMENT_BYTES).toBe(MAX_GROUP_BODY_BYTES - 28);
    });

    it('seals a maximal body into exactly 1200 bytes that open again', () => {
      const f = makeFixture();
      const body = Uint8Array.from(randomBytes(MAX_GROUP_BODY_BYTES));
      const datagram = seal(f, { body });
      expect(datagram.length).toBe(MAX_GROUP_DATAGRAM_BYTES);
      expect(Buffer.from(openGroupDatagram(datagram, makeCtx(f)).body)).toEqual(Buffer.from(body));
    });

    it('refuses to seal with a malformed group id, instance, epoch, index, seq, time or key', () => {
      const f = makeFixture();
      const bad: Partial<SealGroupDatagramParams>[] = [
        { groupId: new Uint8Array(15) },
        { instance: new Uint8Array(9) },
        { epoch: 2 ** 32 },
        { senderIdx: 65_536 },
        { seq: -1 },
        { seq: 2 ** 53 },
        { timeMs: 1.5 },
        { groupKey: new Uint8Array(31) },
        { signingKey: new Uint8Array(32) },
      ];
      for (const overrides of bad) catchSalaError(() => seal(f, overrides), 'SALA_E_GROUP_DATAGRAM_INVALID');
    });

    it('draws a fresh 8-byte instance each time', () => {
      const a = generateGroupInstance();
      expect(a).toHaveLength(8);
      expect(Buffer.from(a).equals(Buffer.from(generateGroupInstance()))).toBe(false);
    });

    it('refuses to seal a body one byte over the limit', () => {
      const f = makeFixture();
      catchSalaError(() => seal(f, { body: new Uint8Array(MAX_GROUP_BODY_BYTES + 1) }), 'SALA_E_GROUP_DATAGRAM_INVALID');
    });
  });

  describe('round trip', () => {
    it('opens what it sealed and returns the header fields and body', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const body = new TextEncoder().encode('hi all');
      const datagram = seal(f, { from: 1, seq: 42, body });
      expect(datagram.length).toBe(MIN_GROUP_DATAGRAM_BYTES + body.length);
      const opened = openGroupDatagram(datagram, ctx);
      expect(opened.header).toEqual({
        version: 1,
        type: GROUP_DATAGRAM_TYPE.DATA,
        groupId: f.groupId,
        epoch: EPOCH,
        senderIdx: 1,
        instance: (f.members[1] as Member).instance,
        seq: 42,
        timeMs: NOW_MS,
      });
      expect(Buffer.from(opened.body).toString()).toBe('hi all');
      expect(ctx.state.stats).toMatchObject({ received: 1, accepted: 1, aeadOpens: 1, signatureVerifies: 1 });
    });

    it('carries NACK and REPAIR bodies that decode by their header type', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const nack = encodeNackBody({ targetSenderIdx: 2, targetInstance: (f.members[2] as Member).instance, ranges: [{ firstSeq: 10, count: 3 }] });
      const openedNack = openGroupDatagram(seal(f, { type: GROUP_DATAGRAM_TYPE.NACK, body: nack, seq: 1 }), ctx);
      expect(decodeGroupBody(openedNack.header.type, openedNack.body)).toMatchObject({
        type: GROUP_DATAGRAM_TYPE.NACK,
        targetSenderIdx: 2,
        ranges: [{ firstSeq: 10, count: 3 }],
      });
      const fragment = { msgId: new Uint8Array(16).fill(9), fragIndex: 1, fragCount: 2, bytes: new Uint8Array([1, 2, 3]) };
      const openedRepair = openGroupDatagram(seal(f, { type: GROUP_DATAGRAM_TYPE.REPAIR, body: encodeRepairBody(11, fragment), seq: 2 }), ctx);
      expect(decodeGroupBody(openedRepair.header.type, openedRepair.body)).toMatchObject({
        type: GROUP_DATAGRAM_TYPE.REPAIR,
        repairedSeq: 11,
        fragment: { fragIndex: 1, fragCount: 2 },
      });
    });

    it('carries an 8 KiB group message as fragments that reassemble in any order', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const message = Uint8Array.from(randomBytes(8 * 1024));
      const msgId = Uint8Array.from(randomBytes(16));
      const datagrams = fragmentGroupMessage(msgId, message, MAX_GROUP_FRAGMENT_BYTES).map((fragment, seq) =>
        seal(f, { seq, body: encodeDataBody(fragment) }),
      );
      expect(datagrams).toHaveLength(8);
      const reassembler = new Reassembler();
      let whole: Uint8Array | undefined;
      for (const datagram of datagrams.reverse()) {
        const opened = openGroupDatagram(datagram, ctx);
        const decoded = decodeGroupBody(opened.header.type, opened.body);
        if (decoded.type !== GROUP_DATAGRAM_TYPE.DATA) throw new Error('expected DATA');
        whole = reassembler.add('0', decoded.fragment, NOW_MS) ?? whole;
      }
      expect(Buffer.from(whole ?? [])).toEqual(Buffer.from(message));
    });
  });

  describe('the construction in SECURITY.md §2', () => {
    it('derives k_s as keyed BLAKE2b-256 over the domain, groupId, epoch, senderIdx and instance', () => {
      const groupKey = Uint8Array.from(randomBytes(32));
      const groupId = Uint8Array.from(randomBytes(16));
      const instance = Uint8Array.from(randomBytes(8));
      const input = Buffer.concat([Buffer.from('sala/v1/gsend\0'), groupId, Buffer.from([0, 0, 1, 2]), Buffer.from([0, 5]), instance]);
      const expected = sodium().crypto_generichash(32, input, groupKey);
      expect(Buffer.from(deriveSenderKey(groupKey, groupId, 0x0102, 5, instance))).toEqual(Buffer.from(expected));
    });

    it('lays out the header big-endian and encrypts body ‖ signature under nonce 0^4 ‖ LE64(seq)', () => {
      const f = makeFixture();
      const member = f.members[1] as Member;
      const body = new Uint8Array([0xaa, 0xbb]);
      const seq = 0x0102030405;
      const datagram = seal(f, { from: 1, seq, body });
      const header = datagram.subarray(0, 48);
      const expectedHeader = Buffer.alloc(48);
      expectedHeader[0] = 1;
      expectedHeader[1] = GROUP_DATAGRAM_TYPE.DATA;
      Buffer.from(f.groupId).copy(expectedHeader, 2);
      expectedHeader.writeUInt32BE(EPOCH, 18);
      expectedHeader.writeUInt16BE(1, 22);
      Buffer.from(member.instance).copy(expectedHeader, 24);
      expectedHeader.writeBigUInt64BE(BigInt(seq), 32);
      expectedHeader.writeBigUInt64BE(BigInt(NOW_MS), 40);
      expect(Buffer.from(header)).toEqual(expectedHeader);

      const nonce = Buffer.alloc(12);
      nonce.writeBigUInt64LE(BigInt(seq), 4);
      const key = deriveSenderKey(f.keys.get(EPOCH) as Uint8Array, f.groupId, EPOCH, 1, member.instance);
      const plaintext = sodium().crypto_aead_chacha20poly1305_ietf_decrypt(null, datagram.subarray(48), header, nonce, key);
      expect(Buffer.from(plaintext.subarray(0, 2))).toEqual(Buffer.from(body));
      const signed = Buffer.concat([header, body]);
      expect(verifyDetached(member.signing.publicKey, 'sala/v1/group\0', signed, plaintext.subarray(2))).toBe(true);
    });
  });

  describe('tampering', () => {
    const memberCount = 3;

    /** What each header position must produce once flipped, given the check order of H3. */
    function expectedCodeAfterFlip(tampered: Uint8Array, position: number): SalaErrorCode {
      if (position < 18) return 'SALA_E_GROUP_DATAGRAM_INVALID'; // version, type, groupId
      if (position < 22) return 'SALA_E_GROUP_KEY_UNKNOWN';
      if (position < 24) return Buffer.from(tampered).readUInt16BE(22) < memberCount ? 'SALA_E_GROUP_AUTH_FAILED' : 'SALA_E_GROUP_NOT_MEMBER';
      if (position < 32 || position >= 48) return 'SALA_E_GROUP_AUTH_FAILED'; // instance, ciphertext
      const view = Buffer.from(tampered);
      const value = position < 40 ? view.readBigUInt64BE(32) : view.readBigUInt64BE(40);
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) return 'SALA_E_GROUP_DATAGRAM_INVALID';
      if (position >= 40 && Math.abs(Number(value) - NOW_MS) > GROUP_CLOCK_SKEW_MS) return 'SALA_E_GROUP_REPLAY';
      return 'SALA_E_GROUP_AUTH_FAILED';
    }

    it('rejects every byte flipped with its check’s code, and never verifies a signature', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { seq: 1000, body: Uint8Array.from(randomBytes(300)) });
      for (let position = 0; position < datagram.length; position += 1) {
        const tampered = Uint8Array.from(datagram);
        tampered[position] = (tampered[position] ?? 0) ^ 0xff;
        expect([position, openCode(tampered, ctx)]).toEqual([position, expectedCodeAfterFlip(tampered, position)]);
      }
      expect(ctx.state.stats.signatureVerifies).toBe(0);
      expect(ctx.state.windows.windowCount).toBe(0);
      expect(openCode(datagram, ctx)).toBe('ok');
    });

    it('rejects every single-bit flip, and never verifies a signature', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { seq: 3, body: new Uint8Array([1, 2, 3, 4]) });
      for (let bit = 0; bit < datagram.length * 8; bit += 1) {
        const tampered = Uint8Array.from(datagram);
        tampered[bit >> 3] = (tampered[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        const position = bit >> 3;
        const code = openCode(tampered, ctx);
        // A type bit flip that lands on another known type (DATA→REPAIR) fails the AEAD instead.
        if (position === 1 && code === 'SALA_E_GROUP_AUTH_FAILED') continue;
        expect([bit, code]).toEqual([bit, expectedCodeAfterFlip(tampered, position)]);
      }
      expect(ctx.state.stats.signatureVerifies).toBe(0);
      expect(openCode(datagram, ctx)).toBe('ok');
    });

    it('rejects a datagram sealed with another group key at the AEAD', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { groupKey: Uint8Array.from(randomBytes(32)) });
      expect(openCode(datagram, ctx)).toBe('SALA_E_GROUP_AUTH_FAILED');
      expect(ctx.state.stats).toMatchObject({ aeadOpens: 1, signatureVerifies: 0 });
    });

    it('rejects every truncation before any crypto or at the AEAD', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { body: new Uint8Array(40) });
      for (let length = 0; length < datagram.length; length += 1) {
        const expected = length < MIN_GROUP_DATAGRAM_BYTES ? 'SALA_E_GROUP_DATAGRAM_INVALID' : 'SALA_E_GROUP_AUTH_FAILED';
        expect([length, openCode(datagram.subarray(0, length), ctx)]).toEqual([length, expected]);
      }
      expect(ctx.state.stats.signatureVerifies).toBe(0);
    });

    it('rejects a datagram over 1200 bytes before any crypto', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { body: new Uint8Array(MAX_GROUP_BODY_BYTES) });
      const oversized = Buffer.concat([datagram, Buffer.from([0])]);
      expect(openCode(oversized, ctx)).toBe('SALA_E_GROUP_DATAGRAM_INVALID');
      expect(ctx.state.stats.aeadOpens).toBe(0);
    });

    it('rejects random bytes without a signature verification', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      for (let i = 0; i < 2000; i += 1) {
        const code = openCode(Uint8Array.from(randomBytes(i % 1400)), ctx);
        expect(code).not.toBe('ok');
      }
      expect(ctx.state.stats.signatureVerifies).toBe(0);
    });

    it('rejects an unknown version and an unknown type', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f);
      for (const [position, value] of [[0, 2], [0, 0], [1, 0], [1, 4], [1, 255]] as const) {
        const tampered = Uint8Array.from(datagram);
        tampered[position] = value;
        expect(openCode(tampered, ctx)).toBe('SALA_E_GROUP_DATAGRAM_INVALID');
      }
      catchSalaError(() => seal(f, { type: 9 as GroupDatagramType }), 'SALA_E_GROUP_DATAGRAM_INVALID');
    });

    it('rejects a datagram for a group this peer is not in', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const other = { ...f, groupId: Uint8Array.from(randomBytes(16)) };
      catchSalaError(() => openGroupDatagram(seal(other), ctx), 'SALA_E_GROUP_DATAGRAM_INVALID');
    });
  });

  describe('membership and key epochs', () => {
    it('rejects the old key after a rotation once the overlap is over', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const old = seal(f, { seq: 5 });
      f.keys.set(EPOCH + 1, Uint8Array.from(randomBytes(32)));
      f.roster.set(EPOCH + 1, f.roster.get(EPOCH) as Map<number, Member>);
      f.keys.delete(EPOCH);
      const err = catchSalaError(() => openGroupDatagram(old, ctx), 'SALA_E_GROUP_KEY_UNKNOWN');
      expect(err.message).toContain('epoch 7');
      expect(ctx.state.stats.aeadOpens).toBe(0);
      expect(openCode(seal(f, { epoch: EPOCH + 1, seq: 6 }), ctx)).toBe('ok');
    });

    it('accepts both the current and the previous epoch during the overlap', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      f.keys.set(EPOCH + 1, Uint8Array.from(randomBytes(32)));
      f.roster.set(EPOCH + 1, f.roster.get(EPOCH) as Map<number, Member>);
      expect(openCode(seal(f, { epoch: EPOCH, seq: 1 }), ctx)).toBe('ok');
      expect(openCode(seal(f, { epoch: EPOCH + 1, seq: 1 }), ctx)).toBe('ok');
    });

    it('rejects a removed member before any crypto, even with the current key', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      (f.roster.get(EPOCH) as Map<number, Member>).delete(2);
      catchSalaError(() => openGroupDatagram(seal(f, { from: 2 }), ctx), 'SALA_E_GROUP_NOT_MEMBER');
      expect(ctx.state.stats.aeadOpens).toBe(0);
    });

    it('rejects a member signing as another senderIdx at the signature', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const mallory = f.members[1] as Member;
      // Mallory holds the group key, so she can derive member 0's subkey; only the signature stops her.
      const forged = seal(f, { from: 0, signingKey: mallory.signing.privateKey, instance: mallory.instance, seq: 5 });
      catchSalaError(() => openGroupDatagram(forged, ctx), 'SALA_E_GROUP_AUTH_FAILED');
      expect(ctx.state.stats).toMatchObject({ aeadOpens: 1, signatureVerifies: 1 });
      // The forgery did not mark seq 5 of that (sender, instance): the real datagram still opens.
      expect(openCode(seal(f, { from: 0, instance: mallory.instance, seq: 5 }), ctx)).toBe('ok');
    });

    it('rejects a datagram whose senderIdx was rewritten, at the AEAD', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = Buffer.from(seal(f, { from: 1 }));
      datagram.writeUInt16BE(0, 22);
      catchSalaError(() => openGroupDatagram(datagram, ctx), 'SALA_E_GROUP_AUTH_FAILED');
      expect(ctx.state.stats.signatureVerifies).toBe(0);
    });

    it('passes the epoch, senderIdx and groupId to the member lookup', () => {
      const f = makeFixture();
      const seen: unknown[] = [];
      const ctx = makeCtx(f);
      ctx.memberSigningKey = (epoch, senderIdx, groupId) => {
        seen.push([epoch, senderIdx, Buffer.from(groupId).toString('hex')]);
        return (f.members[senderIdx] as Member).signing.publicKey;
      };
      openGroupDatagram(seal(f, { from: 2 }), ctx);
      expect(seen).toEqual([[EPOCH, 2, Buffer.from(f.groupId).toString('hex')]]);
    });
  });

  describe('replay', () => {
    it('rejects the same datagram a second time', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const datagram = seal(f, { seq: 9 });
      openGroupDatagram(datagram, ctx);
      const err = catchSalaError(() => openGroupDatagram(datagram, ctx), 'SALA_E_GROUP_REPLAY');
      expect(err.message).toContain('already received');
      expect(ctx.state.stats.signatureVerifies).toBe(1);
    });

    it('rejects a seq 1024 or more below the highest seen as too old', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      openGroupDatagram(seal(f, { seq: 5000 }), ctx);
      const err = catchSalaError(() => openGroupDatagram(seal(f, { seq: 5000 - 1024 }), ctx), 'SALA_E_GROUP_REPLAY');
      expect(err.message).toContain('too old');
      expect(openCode(seal(f, { seq: 5000 - 1023 }), ctx)).toBe('ok');
    });

    it('rejects a datagram replayed 31 s later to a receiver that never saw it', () => {
      const f = makeFixture();
      const datagram = seal(f, { seq: 1 });
      f.clock.nowMs += 31_000;
      const ctx = makeCtx(f);
      const err = catchSalaError(() => openGroupDatagram(datagram, ctx), 'SALA_E_GROUP_REPLAY');
      expect(err.message).toContain('30 s');
      expect(ctx.state.stats.aeadOpens).toBe(0);
    });

    it('rejects a new seq whose signed time is 31 s old or 31 s ahead, and accepts 30 s', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      expect(openCode(seal(f, { seq: 1, timeMs: NOW_MS - 31_000 }), ctx)).toBe('SALA_E_GROUP_REPLAY');
      expect(openCode(seal(f, { seq: 2, timeMs: NOW_MS + 31_000 }), ctx)).toBe('SALA_E_GROUP_REPLAY');
      expect(openCode(seal(f, { seq: 3, timeMs: NOW_MS - 30_000 }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 4, timeMs: NOW_MS + 30_000 }), ctx)).toBe('ok');
    });

    it('keeps separate windows per sender instance, so a restarted sender may start at seq 0 again', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      expect(openCode(seal(f, { seq: 0 }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 0, instance: Uint8Array.from(randomBytes(8)) }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 0 }), ctx)).toBe('SALA_E_GROUP_REPLAY');
    });
  });

  describe('nonce uniqueness (SECURITY.md test 10)', () => {
    it('never repeats a (key, nonce) pair across two restarts of the same sender', () => {
      const f = makeFixture();
      const groupKey = f.keys.get(EPOCH) as Uint8Array;
      const pairs = new Set<string>();
      for (let run = 0; run < 2; run += 1) {
        const instance = Uint8Array.from(randomBytes(8));
        const key = Buffer.from(deriveSenderKey(groupKey, f.groupId, EPOCH, 0, instance)).toString('hex');
        for (let seq = 0; seq < 256; seq += 1) {
          const datagram = seal(f, { instance, seq });
          const nonce = Buffer.alloc(12);
          nonce.writeBigUInt64LE(BigInt(seq), 4);
          expect(decodeGroupHeader(datagram).seq).toBe(seq);
          pairs.add(`${key}/${nonce.toString('hex')}`);
        }
      }
      expect(pairs.size).toBe(512);
    });

    it('gives two senders and two instances different subkeys and ciphertexts for the same seq and body', () => {
      const f = makeFixture();
      const a = seal(f, { from: 0, seq: 1 });
      const b = seal(f, { from: 1, seq: 1 });
      const c = seal(f, { from: 0, seq: 1, instance: Uint8Array.from(randomBytes(8)) });
      const ciphertexts = new Set([a, b, c].map((d) => Buffer.from(d.subarray(GROUP_HEADER_BYTES, GROUP_HEADER_BYTES + 11)).toString('hex')));
      expect(ciphertexts.size).toBe(3);
    });
  });

  describe('rate limit', () => {
    it('drops a sender’s datagrams over its burst and accepts them again after a refill', () => {
      const f = makeFixture();
      const ctx = makeCtx(f, { rateLimiter: new GroupRateBuckets({ burst: 3, perSecond: 1 }) });
      for (let seq = 0; seq < 3; seq += 1) expect(openCode(seal(f, { seq }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 3 }), ctx)).toBe('SALA_E_GROUP_RATE_LIMIT');
      expect(ctx.state.stats.aeadOpens).toBe(3);
      expect(openCode(seal(f, { from: 1, seq: 3 }), ctx)).toBe('ok');
      f.clock.nowMs += 1_000;
      expect(openCode(seal(f, { seq: 4 }), ctx)).toBe('ok');
    });

    it('does not let an outsider spoofing a member’s header drain that member’s bucket', () => {
      const f = makeFixture();
      const ctx = makeCtx(f, { rateLimiter: new GroupRateBuckets({ burst: 3, perSecond: 1 }) });
      const real = seal(f, { seq: 1 });
      for (let i = 0; i < 100; i += 1) {
        const spoof = Uint8Array.from(real);
        spoof.set(randomBytes(spoof.length - GROUP_HEADER_BYTES), GROUP_HEADER_BYTES);
        spoof[32 + 7] = i + 2; // a fresh seq each time
        expect(openCode(spoof, ctx)).toBe('SALA_E_GROUP_AUTH_FAILED');
      }
      expect(openCode(real, ctx)).toBe('ok');
    });

    it('counts one bucket per member, whatever instances it claims', () => {
      const f = makeFixture();
      const ctx = makeCtx(f, { rateLimiter: new GroupRateBuckets({ burst: 2, perSecond: 1 }) });
      expect(openCode(seal(f, { seq: 0, instance: Uint8Array.from(randomBytes(8)) }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 0, instance: Uint8Array.from(randomBytes(8)) }), ctx)).toBe('ok');
      expect(openCode(seal(f, { seq: 0, instance: Uint8Array.from(randomBytes(8)) }), ctx)).toBe('SALA_E_GROUP_RATE_LIMIT');
    });

    it('keeps at most maxSenders buckets', () => {
      const f = makeFixture(8);
      const buckets = new GroupRateBuckets({ maxSenders: 4 });
      const ctx = makeCtx(f, { rateLimiter: buckets });
      for (let from = 0; from < 8; from += 1) openGroupDatagram(seal(f, { from }), ctx);
      expect(buckets.size).toBe(4);
    });

    it('rejects bad options with SALA_E_CONFIG_INVALID', () => {
      catchSalaError(() => new GroupRateBuckets({ burst: 0 }), 'SALA_E_CONFIG_INVALID');
      catchSalaError(() => new GroupRateBuckets({ perSecond: Number.NaN }), 'SALA_E_CONFIG_INVALID');
      catchSalaError(() => new GroupRateBuckets({ maxSenders: 1.5 }), 'SALA_E_CONFIG_INVALID');
      expect(() => new GroupRateBuckets({ perSecond: 0.5 })).not.toThrow();
    });
  });

  describe('check order (H3)', () => {
    it('checks the epoch before the member, and the member before the rate, window, time and crypto', () => {
      const f = makeFixture();
      const ctx = makeCtx(f);
      const stale = seal(f, { from: 1, seq: 1, timeMs: NOW_MS - 60_000, groupKey: Uint8Array.from(randomBytes(32)) });
      (f.roster.get(EPOCH) as Map<number, Member>).delete(1);
      expect(openCode(stale, ctx)).toBe('SALA_E_GROUP_NOT_MEMBER');
      f.keys.delete(EPOCH);
      expect(openCode(stale, ctx)).toBe('SALA_E_GROUP_KEY_UNKNOWN');
    });

    it('checks the rate before the window, and the window before the time', () => {
      const f = makeFixture();
      const ctx = makeCtx(f, { rateLimiter: new GroupRateBuckets({ burst: 1, perSecond: 1 }) });
      const datagram = seal(f, { seq: 1 });
      openGroupDatagram(datagram, ctx);
      expect(openCode(datagram, ctx)).toBe('SALA_E_GROUP_RATE_LIMIT');
      f.clock.nowMs += 31_000;
      const err = catchSalaError(() => openGroupDatagram(datagram, ctx), 'SALA_E_GROUP_REPLAY');
      expect(err.message).toContain('already received');
    });

    it('verifies the signature through the injected verifier only after the AEAD passed', () => {
      const f = makeFixture();
      let calls = 0;
      const ctx = makeCtx(f, {
        verify: (...args) => {
          calls += 1;
          return verifyDetached(...args);
        },
      });
      openCode(seal(f, { groupKey: Uint8Array.from(randomBytes(32)) }), ctx);
      expect(calls).toBe(0);
      openGroupDatagram(seal(f), ctx);
      expect(calls).toBe(1);
    });
  });

  describe('garbage flood (SECURITY.md test 12)', () => {
    it('rejects 50,000 garbage datagrams with zero Ed25519 verifies and no state growth', () => {
      const f = makeFixture();
      const buckets = new GroupRateBuckets();
      let verifies = 0;
      const ctx = makeCtx(f, {
        rateLimiter: buckets,
        verify: (...args) => {
          verifies += 1;
          return verifyDetached(...args);
        },
      });
      const template = seal(f, { seq: 0, body: new Uint8Array(900) });
      const pool = randomBytes(2 * 1024 * 1024);
      const heapBefore = process.memoryUsage().heapUsed;
      for (let i = 0; i < 50_000; i += 1) {
        const start = (i * 7919) % (pool.length - 1300);
        let datagram: Uint8Array;
        if (i % 2 === 0) {
          // Plausible headers: the right group, epoch and a real member, random seqs and instances, garbage ciphertext.
          datagram = Uint8Array.from(pool.subarray(start, start + template.length));
          datagram.set(template.subarray(0, 24), 0);
          datagram[22] = 0;
          datagram[23] = i % 3;
          datagram.fill(0, 32, 34);
          datagram.set(template.subarray(40, 48), 40);
        } else {
          datagram = pool.subarray(start, start + (i % 1300));
        }
        expect(openCode(datagram, ctx)).not.toBe('ok');
      }
      expect(verifies).toBe(0);
      expect(ctx.state.stats.signatureVerifies).toBe(0);
      expect(ctx.state.stats.rejected.SALA_E_GROUP_AUTH_FAILED).toBeGreaterThanOrEqual(25_000);
      expect(ctx.state.windows.windowCount).toBe(0);
      expect(buckets.size).toBe(0);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * 1024 * 1024);
      expect(openCode(template, ctx)).toBe('ok');
    });
  });
});
