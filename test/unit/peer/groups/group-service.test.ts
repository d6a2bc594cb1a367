/**
 * GroupService on real multicast: every member has its own MulticastSocket on 127.0.0.1 inside the
 * test runner's private network namespace (lo has multicast and a 224.0.0.0/4 route there), and the
 * server's side is played by the real GroupRegistry behind a fake rendezvous connection. Nothing
 * here may run outside that namespace: it is all inside describeLan.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  decodeGroupHeader,
  encodeDataBody,
  encodeGroupHeader,
  encodeNackBody,
  GroupReceiveState,
  GROUP_DATAGRAM_TYPE,
  initCrypto,
  openGroupDatagram,
  sealGroupDatagram,
  type GroupDatagramType,
} from '../../../../common/index.js';
import { encodeGroupText } from '../../../../peer/groups/group-message.js';
import { GroupService } from '../../../../peer/groups/group-service.js';
import { describeLan } from '../../../harness/netns.js';
import {
  createMember,
  datagramType,
  FakeGroupServer,
  freeUdpPort,
  captured,
  controlLaneInstance,
  countingOpener,
  dataLaneInstance,
  LossySocket,
  nextTurn,
  rawSocket,
  receivedAtLeast,
  texts,
  waitUntil,
  type Member,
  type MemberOptions,
} from './group-kit.js';

const GROUP = 'class';

async function groupOf(names: readonly string[], options: Readonly<Record<string, MemberOptions>> = {}): Promise<{ server: FakeGroupServer; members: Member[] }> {
  const server = new FakeGroupServer(await freeUdpPort());
  const members: Member[] = [];
  for (const name of names) {
    const member = await createMember(server, name, options[name] ?? {});
    await member.service.join(GROUP);
    members.push(member);
  }
  return { server, members };
}

function pair(members: readonly Member[]): [Member, Member] {
  const [a, b] = members;
  if (a === undefined || b === undefined) throw new Error('need two members');
  return [a, b];
}

function trio(members: readonly Member[]): [Member, Member, Member] {
  const [a, b, c] = members;
  if (a === undefined || b === undefined || c === undefined) throw new Error('need three members');
  return [a, b, c];
}

function range(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** A message that needs three fragments (over 2 × 1044 bytes). */
function threeFragments(tag: string): string {
  return `${tag}:${'x'.repeat(2_500)}`;
}

/** The member's entry (senderIdx) in the last state the server sent `to`. */
function senderIdxOf(server: FakeGroupServer, to: Member, member: Member): number {
  const entry = server.lastState(to.sessionId, GROUP).members.find((m) => m.sessionId === member.sessionId);
  if (entry === undefined) throw new Error(`${member.user} is not in ${to.user}'s member list`);
  return entry.senderIdx;
}

/** A datagram sealed by hand, as `member` would (any key, epoch and instance the test chooses). */
function craft(params: {
  server: FakeGroupServer;
  stateOf: Member;
  signer: Member;
  senderIdx: number;
  epochState?: { epoch: number; key: Uint8Array };
  instance: Uint8Array;
  seq: number;
  type?: GroupDatagramType;
  body?: Uint8Array;
  text?: string;
}): Uint8Array {
  const state = params.server.lastState(params.stateOf.sessionId, GROUP);
  const { epoch, key } = params.epochState ?? state;
  const body =
    params.body ??
    encodeDataBody({ msgId: new Uint8Array(randomBytes(16)), fragIndex: 0, fragCount: 1, bytes: encodeGroupText(params.text ?? '') });
  return sealGroupDatagram({
    groupKey: key,
    groupId: state.groupId,
    epoch,
    senderIdx: params.senderIdx,
    instance: params.instance,
    seq: params.seq,
    timeMs: Date.now(),
    type: params.type ?? GROUP_DATAGRAM_TYPE.DATA,
    body,
    signingKey: params.signer.signingKey,
  });
}

describeLan('GroupService over multicast (in the test network namespace)', () => {
  it('lets two members exchange messages, each delivered once and in the sender\'s order', async () => {
    const [alice, bob] = pair((await groupOf(['alice', 'bob'])).members);
    for (let i = 0; i < 20; i += 1) {
      alice.service.send(GROUP, `a${i}`);
      bob.service.send(GROUP, `b${i}`);
    }
    alice.service.send(GROUP, 'a-end');
    bob.service.send(GROUP, 'b-end');
    await Promise.all([receivedAtLeast(alice, 21), receivedAtLeast(bob, 21)]);

    expect(texts(bob)).toEqual([...range('a', 20), 'a-end']);
    expect(texts(alice)).toEqual([...range('b', 20), 'b-end']);
    expect(bob.received.every((m) => m.from === 'alice' && m.group === GROUP)).toBe(true);
    // The message id is the same on both ends.
    expect(bob.received.map((m) => m.id)).toEqual(alice.sent.map((s) => s.id));
    expect(alice.service.isMulticastWorking(GROUP)).toBe(true);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('lets three members exchange messages, each delivered once and in each sender\'s order', async () => {
    const [alice, bob, carol] = trio((await groupOf(['alice', 'bob', 'carol'])).members);
    for (let i = 0; i < 10; i += 1) for (const member of [alice, bob, carol]) member.service.send(GROUP, `${member.user}${i}`);
    for (const member of [alice, bob, carol]) member.service.send(GROUP, `${member.user}-end`);
    await Promise.all([alice, bob, carol].map((m) => receivedAtLeast(m, 22)));

    for (const member of [alice, bob, carol]) {
      expect(member.received).toHaveLength(22);
      for (const other of [alice, bob, carol].filter((m) => m !== member)) {
        expect(texts(member, other.user)).toEqual([...range(other.user, 10), `${other.user}-end`]);
      }
      expect(texts(member, member.user)).toEqual([]);
    }
    expect([...alice.warnings, ...bob.warnings, ...carol.warnings]).toEqual([]);
  });

  it('splits an 8 KiB message into fragments and reassembles it', async () => {
    const [alice, bob] = pair((await groupOf(['alice', 'bob'])).members);
    const text = 'é'.repeat(4_096); // 8,192 bytes of UTF-8: the limit exactly
    const before = alice.service.stats.datagramsSent;
    const { id } = alice.service.send(GROUP, text, { ref: 'r1' });
    expect(alice.service.stats.datagramsSent - before).toBe(8);
    expect(alice.sent).toEqual([{ id, group: GROUP, ref: 'r1' }]);
    await receivedAtLeast(bob, 1);
    expect(bob.received).toEqual([{ id, group: GROUP, from: 'alice', text, at: expect.any(Number) }]);
    expect(Math.abs((bob.received[0]?.at ?? 0) - Date.now())).toBeLessThan(5_000);
  });

  it('refuses a group text over 8 KiB with SALA_E_MESSAGE_TOO_LARGE and sends nothing', async () => {
    const [alice] = pair((await groupOf(['alice', 'bob'])).members);
    const before = alice.service.stats.datagramsSent;
    expect(() => alice.service.send(GROUP, 'x'.repeat(8_193))).toThrow(expect.objectContaining({ code: 'SALA_E_MESSAGE_TOO_LARGE' }));
    expect(() => alice.service.send(GROUP, 'é'.repeat(4_097))).toThrow(expect.objectContaining({ code: 'SALA_E_MESSAGE_TOO_LARGE' }));
    expect(alice.service.stats.datagramsSent).toBe(before);
    expect(alice.sent).toEqual([]);
  });

  it('repairs lost datagrams (a middle one, a fragment, a last fragment) by NACK and REPAIR, in order', async () => {
    // Bob loses Alice's 2nd, 4th and 9th DATA datagrams: message 1, fragment 0 of message 3, and
    // the last fragment of message 4 (which nothing follows).
    let dataSeen = 0;
    const lose = new Set([2, 4, 9]);
    const { members } = await groupOf(['alice', 'bob'], {
      bob: { openSocket: LossySocket.opener((bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA && lose.has(++dataSeen)) },
    });
    const [alice, bob] = pair(members);
    const sent = ['m0', 'm1', 'm2', threeFragments('m3'), threeFragments('m4')];
    for (const text of sent) alice.service.send(GROUP, text);
    await receivedAtLeast(bob, 5);

    expect(texts(bob)).toEqual(sent);
    expect(dataSeen).toBeGreaterThanOrEqual(9);
    expect(bob.service.stats.nacksSent).toBeGreaterThanOrEqual(1);
    expect(alice.service.stats.repairsSent).toBeGreaterThanOrEqual(3);
    expect(bob.service.stats.seqsLost).toBe(0);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('asks again for a seq whose repair was lost too, and gets it', async () => {
    let dataSeen = 0;
    let repairsSeen = 0;
    const { members } = await groupOf(['alice', 'bob'], {
      bob: {
        openSocket: LossySocket.opener((bytes) => {
          const type = datagramType(bytes);
          if (type === GROUP_DATAGRAM_TYPE.DATA) return ++dataSeen === 2;
          if (type === GROUP_DATAGRAM_TYPE.REPAIR) return ++repairsSeen === 1;
          return false;
        }),
      },
    });
    const [alice, bob] = pair(members);
    for (const text of ['m0', 'm1', 'm2']) alice.service.send(GROUP, text);
    await receivedAtLeast(bob, 3);

    expect(texts(bob)).toEqual(['m0', 'm1', 'm2']);
    expect(repairsSeen).toBeGreaterThanOrEqual(2);
    expect(bob.service.stats.nacksSent).toBeGreaterThanOrEqual(2);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('repairs a lost last message, which nothing follows, after the sender\'s tail announcement', async () => {
    let dataSeen = 0;
    const { members } = await groupOf(['alice', 'bob'], {
      bob: { openSocket: LossySocket.opener((bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA && ++dataSeen === 2) },
    });
    const [alice, bob] = pair(members);
    alice.service.send(GROUP, 'first');
    alice.service.send(GROUP, 'last');
    await receivedAtLeast(bob, 2);

    expect(texts(bob)).toEqual(['first', 'last']);
    expect(alice.service.stats.tailAnnouncementsSent).toBeGreaterThanOrEqual(1);
    expect(alice.service.stats.repairsSent).toBe(1);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('repairs a sender\'s first messages when all of them were lost, after its tail announcement', async () => {
    const { members } = await groupOf(['alice', 'bob'], {
      bob: { openSocket: LossySocket.opener((bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA) },
    });
    const [alice, bob] = pair(members);
    alice.service.send(GROUP, 'first');
    alice.service.send(GROUP, 'second');
    await receivedAtLeast(bob, 2);

    expect(texts(bob)).toEqual(['first', 'second']);
    expect(alice.service.stats.repairsSent).toBe(2);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('gives up on a seq the sender can no longer repair, delivers what follows and warns once', async () => {
    let dataSeen = 0;
    const { members } = await groupOf(['alice', 'bob'], {
      alice: { repairHistoryPerGroup: 1 },
      bob: { repairTimeoutMs: 300, openSocket: LossySocket.opener((bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA && ++dataSeen === 2) },
    });
    const [alice, bob] = pair(members);
    for (const text of ['m0', 'm1', 'm2', 'm3']) alice.service.send(GROUP, text);
    await receivedAtLeast(bob, 3);

    expect(texts(bob)).toEqual(['m0', 'm2', 'm3']);
    expect(bob.service.stats.seqsLost).toBe(1);
    expect(bob.warnings.map((w) => w.code)).toEqual(['SALA_E_GROUP_MESSAGES_LOST']);
    expect(bob.warnings[0]?.message).toMatch(/from alice in class were lost/);
  });

  it('repairs a seq at most once per repair interval, however many NACKs ask for it', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    const address = server.lastState(alice.sessionId, GROUP).address;
    const raw = await rawSocket(server.port, address);
    alice.service.send(GROUP, 'once');
    const [datagram] = await captured(raw, (bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA);
    if (datagram === undefined) throw new Error('alice\'s datagram was not captured');
    const sent = decodeGroupHeader(datagram);

    // Bob (a member when it was sent) asks five times at once.
    const bobIdx = senderIdxOf(server, bob, bob);
    const instance = controlLaneInstance();
    const nack = encodeNackBody({ targetSenderIdx: sent.senderIdx, targetInstance: sent.instance, ranges: [{ firstSeq: sent.seq, count: 1 }] });
    for (let seq = 0; seq < 5; seq += 1) {
      raw.socket.send(craft({ server, stateOf: bob, signer: bob, senderIdx: bobIdx, instance, seq, type: GROUP_DATAGRAM_TYPE.NACK, body: nack }), address);
    }
    raw.socket.send(craft({ server, stateOf: bob, signer: bob, senderIdx: bobIdx, instance: dataLaneInstance(), seq: 0, text: 'marker' }), address);
    await waitUntil(alice.service, 'group.message', () => texts(alice).includes('marker'), 'alice to get the marker');

    expect(alice.service.stats.repairsSent).toBe(1);
    await receivedAtLeast(bob, 1);
    expect(texts(bob)).toEqual(['once']); // the repair is a duplicate for Bob's service, not a second message
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('refuses to send faster than receivers accept with SALA_E_RATE_LIMIT and a retry delay', async () => {
    const [alice] = pair((await groupOf(['alice', 'bob'], { alice: { sendBurst: 16, sendPerSecond: 1 } })).members);
    for (let i = 0; i < 16; i += 1) alice.service.send(GROUP, `m${i}`);
    let error: unknown;
    try {
      alice.service.send(GROUP, 'one too many');
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'SALA_E_RATE_LIMIT', details: { retryAfterMs: expect.any(Number) } });
    expect(alice.sent).toHaveLength(16);
  });

  it('gives a late joiner no history: it receives only what is sent after it joined', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    alice.service.send(GROUP, 'm1');
    alice.service.send(GROUP, 'm2');
    await receivedAtLeast(bob, 2);

    const carol = await createMember(server, 'carol');
    await carol.service.join(GROUP);
    alice.service.send(GROUP, 'm3');
    alice.service.send(GROUP, 'm4');
    await Promise.all([receivedAtLeast(bob, 4), receivedAtLeast(carol, 2)]);

    expect(texts(bob)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(texts(carol)).toEqual(['m3', 'm4']);
    expect(carol.service.stats.nacksSent).toBe(0);
    expect(alice.service.stats.repairsSent).toBe(0);
    expect([...alice.warnings, ...bob.warnings, ...carol.warnings]).toEqual([]);
  });

  it('does not repair, for a late joiner that asks, datagrams sent before it joined', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    const raw = await rawSocket(server.port, server.lastState(alice.sessionId, GROUP).address);
    alice.service.send(GROUP, 'before carol');
    await receivedAtLeast(bob, 1);
    const [oldDatagram] = await captured(raw, (bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA);
    if (oldDatagram === undefined) throw new Error('alice\'s datagram was not captured');
    const old = decodeGroupHeader(oldDatagram);

    const carol = await createMember(server, 'carol');
    await carol.service.join(GROUP);
    // Carol (a member now, with the current key) asks Alice for the seq she sent before Carol joined.
    const carolIdx = senderIdxOf(server, carol, carol);
    const nack = encodeNackBody({ targetSenderIdx: old.senderIdx, targetInstance: old.instance, ranges: [{ firstSeq: old.seq, count: 1 }] });
    const address = server.lastState(carol.sessionId, GROUP).address;
    raw.socket.send(craft({ server, stateOf: carol, signer: carol, senderIdx: carolIdx, instance: controlLaneInstance(), seq: 0, type: GROUP_DATAGRAM_TYPE.NACK, body: nack }), address);
    // Then a message on the same path, so we know Alice has handled the NACK when it arrives.
    raw.socket.send(craft({ server, stateOf: carol, signer: carol, senderIdx: carolIdx, instance: dataLaneInstance(), seq: 0, text: 'marker' }), address);
    await waitUntil(alice.service, 'group.message', () => texts(alice).includes('marker'), 'alice to get the marker');

    expect(alice.service.stats.repairsSent).toBe(0);
    expect(texts(carol)).toEqual([]);
    expect([...alice.warnings, ...bob.warnings, ...carol.warnings]).toEqual([]);
  });

  it('keeps a member that left from reading what is sent after it left', async () => {
    const { server, members } = await groupOf(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = trio(members);
    const address = server.lastState(alice.sessionId, GROUP).address;
    const raw = await rawSocket(server.port, address);
    const carolLastState = server.lastState(carol.sessionId, GROUP);

    carol.service.leave(GROUP);
    expect(carol.events).toContain(`left:${GROUP}`);
    await nextTurn(); // the server's new states (the rotation Carol's leave caused) reach Alice and Bob
    alice.service.send(GROUP, 'after carol left');
    await receivedAtLeast(bob, 1);

    expect(texts(bob)).toEqual(['after carol left']);
    expect(carol.received).toEqual([]);
    // Carol's old key does not open what Alice sent after the rotation.
    const dataDatagrams = await captured(raw, (bytes) => datagramType(bytes) === GROUP_DATAGRAM_TYPE.DATA);
    const afterLeave = dataDatagrams.map((bytes) => ({ bytes, header: decodeGroupHeader(bytes) }));
    expect(afterLeave.length).toBeGreaterThan(0);
    for (const { bytes, header } of afterLeave) {
      expect(header.epoch).toBeGreaterThan(carolLastState.epoch);
      const aliceEntry = carolLastState.members.find((m) => m.sessionId === alice.sessionId);
      expect(() =>
        openGroupDatagram(bytes, {
          isKnownGroup: () => true,
          groupKey: () => carolLastState.key,
          memberSigningKey: () => aliceEntry?.sigPk,
          nowMs: () => Date.now(),
          state: new GroupReceiveState(),
        }),
      ).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_AUTH_FAILED' }));
    }
    expect([...alice.warnings, ...bob.warnings, ...carol.warnings]).toEqual([]);
  });

  it('accepts the previous key epoch within the overlap after a rotation and refuses it after', async () => {
    const overlapMs = 400;
    const { server, members } = await groupOf(['alice', 'bob'], { bob: { overlapMs } });
    const [alice, bob] = pair(members);
    const before = server.lastState(bob.sessionId, GROUP);
    const aliceIdx = senderIdxOf(server, bob, alice);
    const raw = await rawSocket(server.port, before.address);

    const carol = await createMember(server, 'carol'); // her join rotates the key
    await carol.service.join(GROUP);
    const after = server.lastState(bob.sessionId, GROUP);
    expect(after.epoch).toBeGreaterThan(before.epoch);

    const instance = dataLaneInstance();
    const oldEpoch = { epoch: before.epoch, key: before.key };
    raw.socket.send(craft({ server, stateOf: bob, signer: alice, senderIdx: aliceIdx, epochState: oldEpoch, instance, seq: 0, text: 'within overlap' }), before.address);
    await receivedAtLeast(bob, 1);

    await delay(overlapMs + 100); // the behaviour under test is the passing of the overlap
    const rejectedBefore = bob.service.stats.receive.rejected.SALA_E_GROUP_KEY_UNKNOWN;
    raw.socket.send(craft({ server, stateOf: bob, signer: alice, senderIdx: aliceIdx, epochState: oldEpoch, instance, seq: 1, text: 'after overlap' }), before.address);
    raw.socket.send(craft({ server, stateOf: bob, signer: alice, senderIdx: aliceIdx, instance: dataLaneInstance(), seq: 0, text: 'marker' }), before.address);
    await receivedAtLeast(bob, 2);

    expect(texts(bob)).toEqual(['within overlap', 'marker']);
    expect(bob.service.stats.receive.rejected.SALA_E_GROUP_KEY_UNKNOWN - rejectedBefore).toBe(1);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('drops a datagram signed by another member than its sender index names, with a warning', async () => {
    const { server, members } = await groupOf(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = trio(members);
    const address = server.lastState(bob.sessionId, GROUP).address;
    const raw = await rawSocket(server.port, address);
    const forged = craft({ server, stateOf: bob, signer: carol, senderIdx: senderIdxOf(server, bob, alice), instance: dataLaneInstance(), seq: 0, text: 'forged' });
    raw.socket.send(forged, address);
    raw.socket.send(craft({ server, stateOf: bob, signer: carol, senderIdx: senderIdxOf(server, bob, carol), instance: dataLaneInstance(), seq: 0, text: 'marker' }), address);
    await receivedAtLeast(bob, 1);

    expect(texts(bob)).toEqual(['marker']);
    expect(bob.warnings.map((w) => w.code)).toEqual(['SALA_E_GROUP_AUTH_FAILED']);
    expect(alice.received).toEqual([expect.objectContaining({ text: 'marker' })]);
  });

  it('ignores garbage on the group port with a bounded number of warnings and no signature checks', async () => {
    const maxWarnings = 3;
    const { server, members } = await groupOf(['alice', 'bob'], { bob: { maxWarnings } });
    const [alice, bob] = pair(members);
    const state = server.lastState(bob.sessionId, GROUP);
    const raw = await rawSocket(server.port, state.address);
    const before = bob.service.stats;
    const random = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(Math.random() * 256));
    const garbage: Uint8Array[] = [];
    // Another group's traffic on the same port: silently not ours.
    for (let i = 0; i < 50; i += 1) {
      const header = encodeGroupHeader({ type: 1, groupId: random(16), epoch: 1, senderIdx: 0, instance: random(8), seq: i, timeMs: Date.now() });
      garbage.push(Buffer.concat([header, random(200)]));
    }
    // Noise.
    for (let i = 0; i < 100; i += 1) garbage.push(random(1 + Math.floor(Math.random() * 1_400)));
    // A valid header for our group, epoch and a real member, then noise: it gets as far as the AEAD.
    const headed = 100;
    for (let i = 0; i < headed; i += 1) {
      const header = encodeGroupHeader({
        type: GROUP_DATAGRAM_TYPE.DATA,
        groupId: state.groupId,
        epoch: state.epoch,
        senderIdx: senderIdxOf(server, bob, alice),
        instance: random(8),
        seq: i,
        timeMs: Date.now(),
      });
      garbage.push(Buffer.concat([header, random(100 + Math.floor(Math.random() * 1_000))]));
    }
    // In batches Bob has read, so the kernel's receive buffer never overflows: this is about Bob.
    for (let i = 0; i < garbage.length; i += 25) {
      for (const bytes of garbage.slice(i, i + 25)) raw.socket.send(bytes, state.address);
      const expected = Math.min(i + 25, garbage.length);
      await waitForCount(() => bob.service.stats.datagramsReceived - before.datagramsReceived, expected);
    }
    alice.service.send(GROUP, 'still here');
    await receivedAtLeast(bob, 1);

    const after = bob.service.stats;
    expect(texts(bob)).toEqual(['still here']);
    expect(after.datagramsForeign - before.datagramsForeign).toBeGreaterThanOrEqual(50);
    expect(after.receive.aeadOpens - before.receive.aeadOpens).toBe(headed + 1);
    expect(after.receive.signatureVerifies - before.receive.signatureVerifies).toBe(1); // alice's message only
    expect(bob.warnings.length).toBeGreaterThan(0);
    expect(bob.warnings.length).toBeLessThanOrEqual(maxWarnings);
    expect(after.warningsSuppressed).toBeGreaterThanOrEqual(headed);
    // Alice's socket got the garbage too: bounded by her default limit of 10.
    expect(alice.warnings.length).toBeLessThanOrEqual(10);
  });

  it('delivers every message in order across a key rotation', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    const carol = await createMember(server, 'carol');
    const joining = carol.service.join(GROUP);
    for (let i = 0; i < 10; i += 1) alice.service.send(GROUP, `m${i}`);
    await joining;
    for (let i = 10; i < 20; i += 1) alice.service.send(GROUP, `m${i}`);
    await receivedAtLeast(bob, 20);
    expect(texts(bob)).toEqual(range('m', 20));
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });
});

describeLan('GroupService joins, leaves and closes (in the test network namespace)', () => {
  it('rejects a join the server refuses with the server\'s error code', async () => {
    const server = new FakeGroupServer(await freeUdpPort(), { groupsPerSession: 1 });
    const alice = await createMember(server, 'alice');
    await alice.service.join('one');
    await expect(alice.service.join('two')).rejects.toMatchObject({ code: 'SALA_E_RATE_LIMIT' });
    expect(alice.service.groups).toEqual(['one']);
  });

  it('rejects an invalid group name with SALA_E_INVALID_NAME without asking the server', async () => {
    const server = new FakeGroupServer(await freeUdpPort());
    const alice = await createMember(server, 'alice');
    await expect(alice.service.join('no spaces')).rejects.toMatchObject({ code: 'SALA_E_INVALID_NAME' });
    expect(() => alice.service.send('x', 'hi')).toThrow(expect.objectContaining({ code: 'SALA_E_INVALID_NAME' }));
    expect(alice.rendezvous.joins).toEqual([]);
  });

  it('normalises group names as the server does', async () => {
    const { members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    alice.service.send('CLASS', 'upper case name');
    await receivedAtLeast(bob, 1);
    expect(bob.received[0]?.group).toBe(GROUP);
  });

  it('leaves a group: emits group.left, stops delivering, and refuses sends to it', async () => {
    const { members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    bob.service.leave(GROUP);
    expect(bob.events).toEqual([`joined:${GROUP}`, `left:${GROUP}`]);
    expect(bob.rendezvous.leaves).toEqual([GROUP]);
    expect(() => bob.service.send(GROUP, 'hi')).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }));
    expect(() => bob.service.leave(GROUP)).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }));
    expect(bob.service.isMulticastWorking(GROUP)).toBeUndefined();
    // Joining again works, with a fresh membership.
    await bob.service.join(GROUP);
    alice.service.send(GROUP, 'welcome back');
    await receivedAtLeast(bob, 1);
    expect(texts(bob)).toEqual(['welcome back']);
  });

  it('reports group.left when the server takes it out of the group', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    server.registry.leave(GROUP, bob.sessionId);
    await waitUntil(bob.service, 'group.left', () => bob.events.includes(`left:${GROUP}`), 'bob to be taken out');
    expect(bob.service.groups).toEqual([]);
    expect(() => bob.service.send(GROUP, 'hi')).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }));
    expect(alice.service.groups).toEqual([GROUP]);
  });

  it('carries on in the new incarnation of a group after the server restarts', async () => {
    const { server, members } = await groupOf(['alice', 'bob']);
    const [alice, bob] = pair(members);
    const oldGroupId = Buffer.from(server.lastState(bob.sessionId, GROUP).groupId).toString('hex');
    alice.service.send(GROUP, 'before the restart');
    await receivedAtLeast(bob, 1);

    server.restart();
    // Each client joins again when it resumes its session (RendezvousClient repeats its joins).
    alice.rendezvous.joinGroup(GROUP);
    bob.rendezvous.joinGroup(GROUP);
    await nextTurn();
    expect(Buffer.from(server.lastState(bob.sessionId, GROUP).groupId).toString('hex')).not.toBe(oldGroupId);
    alice.service.send(GROUP, 'after the restart');
    await receivedAtLeast(bob, 2);

    expect(texts(bob)).toEqual(['before the restart', 'after the restart']);
    expect(alice.service.groups).toEqual([GROUP]);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('closes its socket when the last group is left, and close() is idempotent with no handles left', async () => {
    const sockets = countingOpener();
    const server = new FakeGroupServer(await freeUdpPort());
    const alice = await createMember(server, 'alice', { openSocket: sockets.openSocket });
    await alice.service.join('one');
    await alice.service.join('two');
    expect(sockets.live()).toBe(1); // one socket for all groups
    alice.service.leave('one');
    expect(sockets.live()).toBe(1);
    alice.service.leave('two');
    await waitForCount(sockets.live, 0);

    await alice.service.join('three');
    expect(sockets.live()).toBe(1);
    expect(sockets.opened()).toBe(2);
    const first = alice.service.close();
    const second = alice.service.close();
    await Promise.all([first, second]);
    expect(sockets.live()).toBe(0);
    await expect(alice.service.join('three')).rejects.toMatchObject({ code: 'SALA_E_CHANNEL_CLOSED' });
    expect(() => alice.service.send('three', 'hi')).toThrow(expect.objectContaining({ code: 'SALA_E_CHANNEL_CLOSED' }));
    expect(alice.rendezvous.listenerCount('group.state')).toBe(0);
    expect(alice.rendezvous.listenerCount('group.left')).toBe(0);
  });

  it('fails a pending join with SALA_E_CHANNEL_CLOSED when closed before the server answers', async () => {
    const server = new FakeGroupServer(await freeUdpPort());
    const alice = await createMember(server, 'alice');
    alice.rendezvous.heldStates = [];
    const joining = alice.service.join(GROUP);
    await alice.service.close();
    await expect(joining).rejects.toMatchObject({ code: 'SALA_E_CHANNEL_CLOSED' });
  });

  it('cancels a join through its AbortSignal and tells the server', async () => {
    const server = new FakeGroupServer(await freeUdpPort());
    const alice = await createMember(server, 'alice');
    alice.rendezvous.heldStates = [];
    const controller = new AbortController();
    const joining = alice.service.join(GROUP, { signal: controller.signal });
    controller.abort();
    await expect(joining).rejects.toMatchObject({ code: 'SALA_E_ABORTED' });
    expect(alice.rendezvous.leaves).toEqual([GROUP]);
    // The state the server sent before it saw the leave does not revive the group.
    alice.rendezvous.releaseHeldStates();
    expect(alice.service.groups).toEqual([]);
  });
});

describe('GroupService options', () => {
  it('refuses a signing key that is not 64 bytes with SALA_E_CONFIG_INVALID naming it', async () => {
    await initCrypto();
    const server = new FakeGroupServer(1);
    expect(
      () =>
        new GroupService({
          me: { user: 'alice', sessionId: 's', signingKey: new Uint8Array(32) },
          rendezvous: server.client('alice', 's', new Uint8Array(32)),
          openSocket: () => Promise.reject(new Error('unused')),
          serverNow: Date.now,
        }),
    ).toThrow(expect.objectContaining({ code: 'SALA_E_CONFIG_INVALID', message: expect.stringContaining('me.signingKey') }));
  });

  it('refuses a tuning value that is not a positive number with SALA_E_CONFIG_INVALID naming it', async () => {
    await initCrypto();
    const server = new FakeGroupServer(1);
    expect(
      () =>
        new GroupService({
          me: { user: 'alice', sessionId: 's', signingKey: new Uint8Array(64) },
          rendezvous: server.client('alice', 's', new Uint8Array(32)),
          openSocket: () => Promise.reject(new Error('unused')),
          serverNow: Date.now,
          repairTimeoutMs: -1,
        }),
    ).toThrow(expect.objectContaining({ code: 'SALA_E_CONFIG_INVALID', message: expect.stringContaining('repairTimeoutMs') }));
  });
});

/**
 * Waits, turn by turn with a deadline, until `count()` is `expected`: for what has no event (a UDP
 * handle closing, a counter of dropped datagrams).
 */
async function waitForCount(count: () => number, expected: number): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (count() !== expected) {
    if (Date.now() > deadline) throw new Error(`expected ${expected}, have ${count()}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
