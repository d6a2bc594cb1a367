/**
 * Group chat through the Peer library (issue 7): real rendezvous server, real peers on 127.0.0.1,
 * real multicast on the test namespace's loopback (the runner turns multicast on for `lo`), and the
 * fallback over direct links when a peer has no multicast at all. The four-host LAN tests are in
 * groups-lan.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { AdminClient } from '../../rendezvous/admin/admin-client.js';
import type { RendezvousServer } from '../../rendezvous/server.js';
import type { Peer, PeerEvents } from '../../peer/peer.js';
import { describeLan } from '../harness/netns.js';
import { rejectsWithSalaError } from '../helpers/errors.js';
import { nextEvent, startPeer } from '../helpers/peers.js';
import { register, startServer } from '../helpers/rendezvous.js';

type GroupMessage = PeerEvents['group.message'][0];

async function serverWith(...users: string[]): Promise<RendezvousServer> {
  const server = await startServer();
  for (const user of users) await register(server, user);
  return server;
}

/** Every group message a peer receives, in arrival order. */
function collect(peer: Peer): GroupMessage[] {
  const got: GroupMessage[] = [];
  peer.on('group.message', (message) => got.push(message));
  return got;
}

async function joinAll(group: string, ...peers: Peer[]): Promise<void> {
  for (const peer of peers) await peer.joinGroup(group);
  // Each join rotates the key; the last state reaches everyone before the first message matters,
  // but a message sealed with the previous epoch is accepted during the overlap anyway.
}

describeLan('Peer group chat on loopback', () => {
  it('delivers each message to every other member once, in the sender\'s order, with the same id and the server time', async () => {
    const server = await serverWith('alice', 'bob', 'carol');
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((user) => startPeer(server, user)));
    if (alice === undefined || bob === undefined || carol === undefined) throw new Error('unreachable');
    expect(alice.multicastInterface).toBe('127.0.0.1');
    const warnings: string[] = [];
    for (const peer of [alice, bob, carol]) peer.on('warning', ({ code }) => warnings.push(code));
    const joined = nextEvent(bob, 'group.joined');
    await joinAll('class-3b', alice, bob, carol);
    expect(await joined).toEqual([{ group: 'class-3b' }]);
    expect(alice.groups()).toEqual(['class-3b']);
    const atBob = collect(bob);
    const atCarol = collect(carol);
    const atAlice = collect(alice);
    const sent: string[] = [];
    alice.on('group.sent', ({ id }) => sent.push(id));
    const texts = Array.from({ length: 40 }, (_, i) => `hello ${i} ${'é'.repeat(i * 50)}`);
    for (const text of texts) alice.groupSend('class-3b', text);
    const { id: fromBob } = bob.groupSend('Class-3B', 'bob here', { ref: 'b1' });
    await vi.waitFor(() => {
      expect(atBob).toHaveLength(40);
      expect(atCarol).toHaveLength(41);
      expect(atAlice).toHaveLength(1);
    }, { timeout: 10_000 });
    expect(atBob.map((m) => m.text)).toEqual(texts);
    expect(atCarol.filter((m) => m.from === 'alice').map((m) => m.text)).toEqual(texts);
    expect(atBob.map((m) => m.id)).toEqual(sent);
    expect(atAlice[0]).toMatchObject({ id: fromBob, group: 'class-3b', from: 'bob', text: 'bob here' });
    expect(Math.abs((atAlice[0]?.at ?? 0) - Date.now())).toBeLessThan(5_000);
    expect(warnings).toEqual([]);
  });

  it('goes over direct links, and says so, when a member has no multicast', async () => {
    const server = await serverWith('alice', 'bob', 'carol');
    const alice = await startPeer(server, 'alice', { tuning: { isMulticastDisabled: true } });
    const bob = await startPeer(server, 'bob');
    const carol = await startPeer(server, 'carol', { tuning: { isMulticastDisabled: true } });
    expect(alice.multicastInterface).toBeUndefined();
    const warned = nextEvent(alice, 'warning', ({ code }) => code === 'SALA_E_GROUP_MULTICAST_UNAVAILABLE');
    await joinAll('lab', bob, alice, carol);
    await warned;
    const atAlice = collect(alice);
    const atBob = collect(bob);
    const atCarol = collect(carol);
    for (let i = 0; i < 10; i += 1) alice.groupSend('lab', `a${i}`);
    for (let i = 0; i < 10; i += 1) bob.groupSend('lab', `b${i}`);
    await vi.waitFor(() => {
      expect(atBob.map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
      expect(atAlice.map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
      expect(atCarol).toHaveLength(20);
    }, { timeout: 15_000 });
    expect(atCarol.filter((m) => m.from === 'alice').map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(atCarol.filter((m) => m.from === 'bob').map((m) => m.text)).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
  });

  it('a member who leaves gets nothing sent after, and can join again', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await joinAll('team', alice, bob);
    const atBob = collect(bob);
    alice.groupSend('team', 'before');
    await vi.waitFor(() => expect(atBob.map((m) => m.text)).toEqual(['before']));
    const left = nextEvent(bob, 'group.left');
    bob.leaveGroup('team');
    expect(await left).toEqual([{ group: 'team' }]);
    expect(bob.groups()).toEqual([]);
    // The server's new key reaches alice; what she sends now is sealed with it.
    await vi.waitFor(() => expect(() => alice.groupSend('team', 'after')).not.toThrow());
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(atBob.map((m) => m.text)).toEqual(['before']);
    expect(() => bob.groupSend('team', 'x')).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }) as Error);
    await bob.joinGroup('team');
    alice.groupSend('team', 'welcome back');
    await vi.waitFor(() => expect(atBob.map((m) => m.text)).toEqual(['before', 'welcome back']));
  });

  it('refuses bad names, texts over 8 KiB and sends to groups it is not in, and stays usable', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await rejectsWithSalaError(alice.joinGroup('no spaces!'), 'SALA_E_INVALID_NAME');
    expect(() => alice.groupSend('nowhere', 'hi')).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }) as Error);
    expect(() => alice.leaveGroup('nowhere')).toThrow(expect.objectContaining({ code: 'SALA_E_GROUP_NOT_MEMBER' }) as Error);
    await joinAll('g1', alice, bob);
    expect(() => alice.groupSend('g1', 'x'.repeat(8 * 1024 + 1))).toThrow(expect.objectContaining({ code: 'SALA_E_MESSAGE_TOO_LARGE' }) as Error);
    const atBob = collect(bob);
    alice.groupSend('g1', 'x'.repeat(8 * 1024));
    await vi.waitFor(() => expect(atBob.map((m) => m.text.length)).toEqual([8 * 1024]));
  });

  it('records joins, leaves and messages in the activity log without their texts', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await joinAll('audit', alice, bob);
    const received = nextEvent(bob, 'group.message');
    alice.groupSend('audit', 'secret words');
    await received;
    bob.leaveGroup('audit');
    const admin = await AdminClient.fromDataDir(server.dataDir);
    await vi.waitFor(async () => {
      const records = JSON.parse(await admin.exportLogs({ format: 'json' })) as { event: string; user: string; detail: string }[];
      const events = records.filter((r) => r.event.startsWith('group.')).map((r) => `${r.user} ${r.event}`);
      expect(events).toEqual(expect.arrayContaining(['alice group.joined', 'bob group.joined', 'alice group.sent', 'bob group.received', 'bob group.left']));
      expect(JSON.stringify(records)).not.toContain('secret words');
    }, { timeout: 10_000 });
  });
});

describe('Peer groups without a namespace', () => {
  it('fails a join cleanly once the peer has quit', async () => {
    const server = await serverWith('alice');
    const alice = await startPeer(server, 'alice', { tuning: { isMulticastDisabled: true } });
    await alice.quit();
    await expect(alice.joinGroup('x')).rejects.toMatchObject({ code: 'SALA_E_CHANNEL_CLOSED' });
  });
});
