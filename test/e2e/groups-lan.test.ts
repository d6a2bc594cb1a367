import { expect, it } from 'vitest';
import type { JsonLine } from '../../common/process/json-child.js';
import { useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';
import { eventsOf, expectNoTrouble, nextRef, PEER_FAILURES, startPeers, startServer, WAIT_MS, type Running, type Server } from '../harness/sala-lan.js';

/**
 * Issue 7 on a simulated LAN: four hosts in one group, with real multicast between namespaces over
 * a bridge, the real `sala chat --json` on each (pinned to its LAN address with --interface) and the
 * real rendezvous server on a fifth host, found by mDNS. Every message reaches every other member
 * once and in its sender's order; a host whose cable is out for a while gets what it missed
 * repaired when it is back; a member that left gets nothing sent after.
 */

const GROUP = 'class-3b';
const USERS = ['alice', 'bob', 'carol', 'dave'] as const;
/** Enough to fill several repair rounds, within the group's default send rate (50/s, bursts of 128). */
const MESSAGES_EACH = 30;
/** Repairs wait for the next tail announcement (1 s, 2 s, 4 s… after the last message). */
const REPAIR_WAIT_MS = 20_000;

async function startGroup(options: { beforeJoining?: (lan: Lan) => Promise<void> } = {}): Promise<{ lan: Lan; server: Server; peers: Running[] }> {
  const lan = await useLan(USERS.length + 1);
  const server = await startServer(lan, 0);
  const peers = await startPeers(lan, server, USERS.map((user, i) => ({ index: i + 1, user })));
  await options.beforeJoining?.(lan);
  for (const peer of peers) {
    peer.child.send({ cmd: 'join', group: GROUP });
    await peer.child.waitForEvent('group.joined', { timeoutMs: WAIT_MS, failOnEvents: ['error'] });
  }
  // Each join rotated the key; wait until the last rotation reached everyone, so the first
  // messages below are sealed in an epoch every member holds.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { lan, server, peers };
}

/** Sends `count` texts from `from`, tagged with sender and index; resolves with their ids in order. */
async function sendMany(from: Running, count: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const ref = nextRef('g');
    from.child.send({ cmd: 'groupSend', group: GROUP, text: `${tag} ${from.user} ${i}`, ref });
    const sent = await from.child.waitFor((line) => (line['event'] === 'group.sent' && line['ref'] === ref) || (line['event'] === 'error' && line['ref'] === ref), {
      timeoutMs: WAIT_MS,
      description: `group.sent ${ref}`,
    });
    expect(sent).toMatchObject({ event: 'group.sent', group: GROUP });
    ids.push(String(sent['id']));
  }
  return ids;
}

function groupMessages(peer: Running, tag: string): JsonLine[] {
  return eventsOf(peer, 'group.message').filter((line) => String(line['text']).startsWith(`${tag} `));
}

/** Waits until `peer` has `count` group messages tagged `tag`. */
async function waitForMessages(peer: Running, tag: string, count: number, timeoutMs: number): Promise<JsonLine[]> {
  const deadline = performance.now() + timeoutMs;
  while (groupMessages(peer, tag).length < count) {
    if (performance.now() > deadline) {
      throw new Error(`${peer.user} has ${groupMessages(peer, tag).length} of ${count} "${tag}" group messages after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return groupMessages(peer, tag);
}

/** Each sender's messages at `peer`: exactly `ids[sender]`, in that order, each once. */
function expectEachOnceInOrder(peer: Running, tag: string, idsBySender: ReadonlyMap<string, readonly string[]>): void {
  const got = groupMessages(peer, tag);
  for (const [sender, ids] of idsBySender) {
    if (sender === peer.user) continue;
    const fromSender = got.filter((line) => line['from'] === sender);
    expect(fromSender.map((line) => line['id']), `${peer.user} from ${sender}`).toEqual(ids);
    expect(fromSender.map((line) => line['text'])).toEqual(ids.map((_, i) => `${tag} ${sender} ${i}`));
  }
  expect(got.filter((line) => line['from'] === peer.user)).toEqual([]);
}

describeLan('group chat on a four-host LAN', () => {
  it('delivers every message to every other member exactly once and in each sender\'s order, over multicast', async () => {
    const { peers } = await startGroup();
    const idsBySender = new Map<string, string[]>();
    // All four send at once: their datagrams interleave on the wire.
    await Promise.all(peers.map(async (peer) => idsBySender.set(peer.user, await sendMany(peer, MESSAGES_EACH, 'm'))));
    for (const peer of peers) await waitForMessages(peer, 'm', MESSAGES_EACH * (USERS.length - 1), WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 500)); // a duplicate would show by now
    for (const peer of peers) {
      expectEachOnceInOrder(peer, 'm', idsBySender);
      // Multicast worked between the hosts: no fallback, no loss, nothing refused.
      expectNoTrouble(peer);
      expect(eventsOf(peer, 'link.up')).toEqual([]);
    }
  });

  it('repairs what a host missed while its cable was out, once it is back, though nobody sends anything new', async () => {
    const { lan, peers } = await startGroup();
    const dave = peers[3];
    if (dave === undefined) throw new Error('unreachable');
    const others = peers.slice(0, 3);
    // Everyone has heard from everyone once, so each stream exists at dave's before the cut.
    const warmup = new Map<string, string[]>();
    await Promise.all(others.map(async (peer) => warmup.set(peer.user, await sendMany(peer, 1, 'w'))));
    await waitForMessages(dave, 'w', 3, WAIT_MS);

    await lan.linkDown(4);
    const idsBySender = new Map<string, string[]>();
    await Promise.all(others.map(async (peer) => idsBySender.set(peer.user, await sendMany(peer, 10, 'cut'))));
    for (const peer of others) await waitForMessages(peer, 'cut', 20, WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the first tail announcements are gone too
    expect(groupMessages(dave, 'cut')).toEqual([]);
    await lan.linkUp(4);

    await waitForMessages(dave, 'cut', 30, REPAIR_WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expectEachOnceInOrder(dave, 'cut', idsBySender);
    expectNoTrouble(dave);
  });

  it('heals a network that drops multicast to one host: the others send to it over links, and it gets everything once, in order', async () => {
    // Host 4's "access point" forwards no multicast to it; its own self-test still passes.
    const { peers } = await startGroup({ beforeJoining: (lan) => lan.dropMulticastTo(4) });
    const dave = peers[3];
    if (dave === undefined) throw new Error('unreachable');
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // the reachability checks after the last join
    const idsBySender = new Map<string, string[]>();
    await Promise.all(peers.map(async (peer) => idsBySender.set(peer.user, await sendMany(peer, 10, 'heal'))));
    for (const peer of peers) await waitForMessages(peer, 'heal', 30, WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const peer of peers) {
      expectEachOnceInOrder(peer, 'heal', idsBySender);
      expectNoTrouble(peer);
    }
    // Dave is linked to each of the others (they send to him over links); they stay on multicast among themselves.
    expect(new Set(eventsOf(dave, 'link.up').map((line) => line['user']))).toEqual(new Set(['alice', 'bob', 'carol']));
    expect(eventsOf(peers[0] ?? dave, 'link.up').map((line) => line['user'])).toEqual(['dave']);
  });

  it('goes on over multicast while the server is down and while peers reconnect to the restarted server, which kept the group', async () => {
    const { lan, server, peers } = await startGroup();
    const pid = server.child.pid;
    if (pid === undefined) throw new Error('the server has no pid');
    process.kill(pid, 'SIGKILL');
    await server.child.exited;
    await Promise.all(peers.map((peer) => peer.child.waitForEvent('server.disconnected', { timeoutMs: WAIT_MS, failOnEvents: PEER_FAILURES })));
    // The group needs no server while the keys last: messages go on.
    const during = new Map<string, string[]>();
    await Promise.all(peers.map(async (peer) => during.set(peer.user, await sendMany(peer, 5, 'down'))));
    for (const peer of peers) await waitForMessages(peer, 'down', 15, WAIT_MS);

    await startServer(lan, 0, server.dataDir, server.port);
    const reconnected = peers.map((peer) => peer.child.waitForEvent('server.reconnected', { timeoutMs: 30_000, failOnEvents: PEER_FAILURES }));
    // Peers come back one by one (backoff with jitter). The server kept the group, its key and its
    // members, so those already back and those not yet back still read each other: send at once.
    await Promise.race(reconnected);
    const after = new Map<string, string[]>();
    await Promise.all(peers.map(async (peer) => after.set(peer.user, await sendMany(peer, 5, 'back'))));
    await Promise.all(reconnected);
    for (const peer of peers) await waitForMessages(peer, 'back', 15, WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const peer of peers) {
      expectEachOnceInOrder(peer, 'down', during);
      expectEachOnceInOrder(peer, 'back', after);
      expectNoTrouble(peer);
      expect(eventsOf(peer, 'group.left')).toEqual([]);
    }
  });

  it('gives a member that left nothing sent after it left; the others go on with a new key', async () => {
    const { peers } = await startGroup();
    const [alice, bob, carol] = peers;
    if (alice === undefined || bob === undefined || carol === undefined) throw new Error('unreachable');
    await sendMany(alice, 1, 'before');
    await waitForMessages(carol, 'before', 1, WAIT_MS);
    carol.child.send({ cmd: 'leave', group: GROUP });
    await carol.child.waitForEvent('group.left', { timeoutMs: WAIT_MS });
    // Carol stays in another group, so her multicast socket stays open on the group port.
    carol.child.send({ cmd: 'join', group: 'other' });
    await carol.child.waitForEvent('group.joined', { timeoutMs: WAIT_MS });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the new key reaches everyone

    const ids = await sendMany(alice, 5, 'after');
    await waitForMessages(bob, 'after', 5, WAIT_MS);
    expect(groupMessages(bob, 'after').map((line) => line['id'])).toEqual(ids);
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // tail announcements and any repairs too
    expect(groupMessages(carol, 'after')).toEqual([]);
    expectNoTrouble(carol);
  });
});
