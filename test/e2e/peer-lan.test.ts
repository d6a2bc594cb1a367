import { randomBytes } from 'node:crypto';
import { expect, it, vi } from 'vitest';
import type { JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';
import {
  PEER_FAILURES,
  START_WAIT_MS,
  WAIT_MS,
  chat,
  deliveredWithId,
  entryOf,
  eventsOf,
  expectNoTrouble,
  historyOf,
  messageWithId,
  nextRef,
  peersOf,
  peersUntil,
  registerUser,
  retransmittedTo,
  send,
  startPeer,
  startPeers,
  startServer,
  type Running,
} from '../harness/sala-lan.js';

/**
 * Issue 5 on a simulated LAN: the real `sala` CLI (JSON lines) on three hosts and the real
 * rendezvous server on a fourth. Peers find the server by mDNS alone (no --server), see each other
 * through the directory and mDNS, and chat over direct links; a peer cannot pass for another user;
 * messages survive a pulled cable and a killed server; bad mDNS answers do not hurt. Every process
 * runs in a harness-made namespace.
 */

const PEER_PROBE = 'test/harness/peer-probe.js';
const FLOOD_PROBE = 'test/harness/mdns-flood-probe.js';

/** A well-formed device fingerprint that belongs to no device. */
function randomFingerprint(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const code = [...randomBytes(16)].map((byte) => alphabet[byte % 32]).join('');
  return code.match(/.{4}/g)?.join('-') ?? code;
}

/** An address on the LAN's subnet where no host is. */
function vacantAddress(lan: Lan, lastOctet: number): string {
  return lan.host(0).address.replace(/\.\d+$/, `.${lastOctet}`);
}

/** The device fingerprint `user` announces on mDNS, as anyone on the LAN can read it. */
async function announcedFingerprint(lan: Lan, index: number, user: string): Promise<string> {
  const browser = lan.spawn(index, [distScript('test/harness/lan-probe.js'), 'mdns-browse', lan.host(index).address, 'sala']);
  const up = await browser.waitFor((line) => line['event'] === 'mdns.up' && (line['txt'] as Record<string, unknown> | null)?.['u'] === user, {
    timeoutMs: WAIT_MS,
    description: `${user}'s _sala._tcp announcement`,
  });
  await browser.kill();
  return String((up['txt'] as Record<string, unknown>)['fp']);
}

/** The reasons of the `discovery.record_rejected` debug lines (SALA_LOG=debug) in a peer's stderr. */
function rejectionsIn(stderr: string): string[] {
  const reasons: string[] = [];
  for (const text of stderr.split('\n')) {
    if (!text.includes('discovery.record_rejected')) continue;
    try {
      const line = JSON.parse(text) as { event?: unknown; reason?: unknown };
      if (line.event === 'discovery.record_rejected' && typeof line.reason === 'string') reasons.push(line.reason);
    } catch {
      // a line cut by the stderr buffer's limit
    }
  }
  return reasons;
}

function startFlood(lan: Lan, index: number, services: readonly Record<string, unknown>[]): JsonChild {
  return lan.spawn(index, [distScript(FLOOD_PROBE), 'announce', lan.host(index).address, JSON.stringify(services)]);
}

async function waitForAnnounced(flood: JsonChild, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await flood.waitForEvent('flood.announced', { timeoutMs: WAIT_MS });
}

describeLan('sala peers on a LAN', () => {
  it('finds the server by mDNS alone on three hosts, lists the others via directory and mDNS, and chats both ways', async () => {
    const lan = await useLan(4);
    const server = await startServer(lan, 0);
    const peers = await startPeers(lan, server, [
      { index: 1, user: 'alice' },
      { index: 2, user: 'bob' },
      { index: 3, user: 'carol' },
    ]);
    const [alice, bob, carol] = peers as [Running, Running, Running];
    expect(new Set(peers.map((p) => p.sessionId)).size).toBe(3);

    for (const peer of peers) {
      const others = peers.filter((p) => p !== peer);
      await peersUntil(peer, (list) => {
        expect(list).toEqual(others.map((o) => ({ user: o.user, online: true, addresses: [o.address], via: ['directory', 'mdns'] })));
      });
    }

    await chat(alice, bob, 'hello bob, from alice');
    await chat(bob, alice, 'hi alice, bob here');
    await chat(carol, alice, 'carol says hi');
    for (const peer of peers) {
      expectNoTrouble(peer);
      // Each arrival is told once; nobody went offline.
      const online = eventsOf(peer, 'peer.online').map((line) => line['user']);
      expect(new Set(online).size).toBe(online.length);
      expect(eventsOf(peer, 'peer.offline')).toEqual([]);
    }
  }, 60_000);

  it('lists each other user once, with no address twice, when a two-address device is seen through the directory and mDNS', async () => {
    const lan = await useLan(4);
    // Bob's host has a second address on its LAN interface, and bob is not pinned to either.
    const bobSecond = vacantAddress(lan, 200);
    await lan.exec(2, 'ip', ['address', 'add', `${bobSecond}/24`, 'dev', 'eth0']);
    const server = await startServer(lan, 0);
    const [alice, bob, carol] = (await startPeers(lan, server, [
      { index: 1, user: 'alice' },
      { index: 2, user: 'bob', isPinned: false },
      { index: 3, user: 'carol' },
    ])) as [Running, Running, Running];

    const both = [`${bob.host}:${bob.port}`, `${bobSecond}:${bob.port}`].sort();
    const list = await peersUntil(alice, (peers) => {
      const entry = entryOf(peers, 'bob');
      expect(entry?.via).toEqual(['directory', 'mdns']);
      expect(entry?.addresses.filter((a) => !a.startsWith('[')).sort()).toEqual(both);
      // Unpinned, bob's mDNS answer also carries eth0's IPv6 link-local address (see the report).
      expect(entry?.addresses.filter((a) => a.startsWith('[')).every((a) => a.toLowerCase().startsWith('[fe80:'))).toBe(true);
      expect(entryOf(peers, 'carol')?.via).toEqual(['directory', 'mdns']);
    });
    expect(list.map((p) => p.user)).toEqual(['bob', 'carol']);
    for (const entry of list) expect(new Set(entry.addresses).size).toBe(entry.addresses.length);
    expect(entryOf(list, 'carol')).toEqual({ user: 'carol', online: true, addresses: [carol.address], via: ['directory', 'mdns'] });

    // The merged entry is one device: a message reaches bob once.
    await chat(alice, bob, 'one bob, two addresses');
    expect(eventsOf(bob, 'message')).toHaveLength(1);
    expectNoTrouble(alice);
    expectNoTrouble(bob);
  }, 60_000);

  it('refuses a link to a real logged-in user who answers at an address dialled for another user', async () => {
    const lan = await useLan(4);
    const server = await startServer(lan, 0);
    const [bob, mallory] = (await startPeers(lan, server, [
      { index: 2, user: 'bob' },
      { index: 3, user: 'mallory' },
    ])) as [Running, Running];
    // Dave, on host 1, is a logged-in peer too: he holds a real ticket and dials with the product's handshake.
    const dave = lan.spawn(1, [distScript(PEER_PROBE), 'dialer', server.host, String(server.port), server.fingerprint, 'dave', 'dave password']);
    await dave.waitForEvent('ready', { timeoutMs: START_WAIT_MS });
    const dial = async (target: Running, expectedUser: string): Promise<JsonLine> => {
      const ref = nextRef('dial');
      const answer = dave.waitFor((line) => line['ref'] === ref, { timeoutMs: WAIT_MS, description: `dial ${ref}` });
      dave.send({ cmd: 'dial', host: target.host, port: target.port, expectedUser, ref });
      return answer;
    };

    // Mallory's listener answers with her own valid ticket: dialled as "bob", that is refused.
    expect(await dial(mallory, 'bob')).toMatchObject({ event: 'dial.failed', code: 'SALA_E_TICKET_INVALID' });
    // The same handshake to the real bob, and to mallory as herself, succeeds.
    expect(await dial(bob, 'bob')).toMatchObject({ event: 'dial.ok', user: 'bob', sessionId: bob.sessionId });
    expect(await dial(mallory, 'mallory')).toMatchObject({ event: 'dial.ok', user: 'mallory', sessionId: mallory.sessionId });
    // The refused dial never became a link on mallory's side: her only link is the one made as herself.
    await mallory.child.waitFor((line) => line['event'] === 'link.up' && line['user'] === 'dave', { timeoutMs: WAIT_MS, description: 'link.up from dave' });
    expect(eventsOf(mallory, 'link.up')).toHaveLength(1);
    expectNoTrouble(bob);
    expectNoTrouble(mallory);
  }, 60_000);

  it('gives mallory nothing when she announces herself as bob on mDNS, and delivers the message to the real bob when he comes', async () => {
    const lan = await useLan(4);
    const server = await startServer(lan, 0);
    const [[alice, mallory], bobSpec] = await Promise.all([
      startPeers(lan, server, [
        { index: 1, user: 'alice' },
        { index: 3, user: 'mallory' },
      ]) as Promise<[Running, Running]>,
      registerUser(lan, server, { index: 2, user: 'bob' }),
    ]);

    // Bob is away. Mallory, from her own host, announces "a device of bob" at her own listener.
    const flood = startFlood(lan, 3, [
      { name: 'sala-bob-mallory', port: mallory.port, txt: ['u=bob', `fp=${randomFingerprint()}`, 'v=1'], addresses: [mallory.host] },
    ]);
    await waitForAnnounced(flood, 1);
    await peersUntil(alice, (peers) => {
      // Heard of, but not online: the server's directory does not list bob, and an mDNS claim alone
      // (which anyone on the LAN can make) does not make him online while the server is reachable.
      expect(entryOf(peers, 'bob')).toEqual({ user: 'bob', online: false, addresses: [mallory.address], via: ['mdns'] });
    });

    // Alice dials the only "bob" she can see: the handshake shows it is mallory, so the message waits.
    const sent = await send(alice, 'bob', 'for bob only', ['SALA_E_TICKET_INVALID']);
    expect(sent['status']).toBe('queued');
    const refused = await alice.child.waitFor((line) => line['event'] === 'warning', { timeoutMs: WAIT_MS, description: 'a refused link' });
    expect(refused).toMatchObject({ code: 'SALA_E_TICKET_INVALID', message: expect.stringMatching(/^bob: /) });
    expect(eventsOf(mallory, 'message')).toEqual([]);
    expect(eventsOf(mallory, 'link.up')).toEqual([]);

    // The real bob logs in: the message reaches him, once.
    const bob = await startPeer(lan, server, bobSpec);
    const message = await messageWithId(bob, sent['id'], 30_000);
    expect(message).toMatchObject({ from: 'alice', text: 'for bob only' });
    await deliveredWithId(alice, sent['id'], 30_000);
    expect(eventsOf(bob, 'message')).toHaveLength(1);
    expect(eventsOf(alice, 'link.up').map((line) => [line['user'], line['sessionId']])).toEqual([['bob', bob.sessionId]]);
    // Mallory never got a link from alice, let alone the message; alice only ever refused her.
    expect(eventsOf(mallory, 'message')).toEqual([]);
    expect(eventsOf(mallory, 'link.up')).toEqual([]);
    expectNoTrouble(alice, ['SALA_E_TICKET_INVALID']);
    expectNoTrouble(mallory);
    expectNoTrouble(bob);
  }, 60_000);

  it('delivers messages sent over a live link while the recipient’s cable is out once each, in order, when it is back', async () => {
    const lan = await useLan(3);
    const server = await startServer(lan, 0);
    const [alice, bob] = (await startPeers(lan, server, [
      { index: 1, user: 'alice' },
      { index: 2, user: 'bob' },
    ])) as [Running, Running];
    await chat(alice, bob, 'before the cable is pulled');

    await lan.linkDown(2);
    const texts = ['one', 'two', 'three'];
    const sent: JsonLine[] = [];
    for (const text of texts) sent.push(await send(alice, 'bob', text));
    for (const line of sent) expect(['sent', 'queued']).toContain(line['status']);
    // Keep the cable out until the messages are known to be lost on the wire: the link's TCP
    // connection has retransmitted them several times (200 ms, then doubling: about 3 s of outage).
    await retransmittedTo(lan, 1, bob.host);
    expect(eventsOf(bob, 'message').map((line) => line['text'])).toEqual(['before the cable is pulled']);

    await lan.linkUp(2);
    const ids = sent.map((line) => line['id']);
    await Promise.all(ids.map((id) => messageWithId(bob, id, 30_000)));
    await Promise.all(ids.map((id) => deliveredWithId(alice, id, 30_000)));
    const received = eventsOf(bob, 'message').slice(1);
    expect(received.map((line) => [line['id'], line['text']])).toEqual(ids.map((id, i) => [id, texts[i]]));

    // Bob's history holds each once, in order, and alice's shows them delivered.
    const bobHistory = (await historyOf(bob, 'alice'))['messages'] as { id: string; text: string }[];
    expect(bobHistory.map((m) => m.text)).toEqual(['before the cable is pulled', ...texts]);
    const aliceHistory = (await historyOf(alice, 'bob'))['messages'] as { id: string; status: string }[];
    expect(aliceHistory.every((m) => m.status === 'delivered')).toBe(true);
    expect(eventsOf(bob, 'message')).toHaveLength(texts.length + 1);
    // Every message is reported delivered, exactly once.
    expect(eventsOf(alice, 'delivered').map((line) => String(line['id'])).sort()).toEqual(aliceHistory.map((m) => m.id).sort());
    expectNoTrouble(alice);
    expectNoTrouble(bob);
  }, 60_000);

  it('queues messages for a peer whose cable is out before any link exists and delivers them once each, in order, when it is back', async () => {
    const lan = await useLan(3);
    const server = await startServer(lan, 0);
    const [alice, bob] = (await startPeers(lan, server, [
      { index: 1, user: 'alice' },
      { index: 2, user: 'bob' },
    ])) as [Running, Running];
    await peersUntil(alice, (peers) => expect(entryOf(peers, 'bob')?.online).toBe(true));

    await lan.linkDown(2);
    // Bob is online as far as the server knows, so alice dials him first: nobody answers, and each
    // message waits in her outbox.
    const texts = ['first', 'second'];
    const sent: JsonLine[] = [];
    for (const text of texts) sent.push(await send(alice, 'bob', text));
    expect(sent.map((line) => line['status'])).toEqual(['queued', 'queued']);
    expect(eventsOf(bob, 'message')).toEqual([]);
    expect(eventsOf(alice, 'link.up')).toEqual([]);

    await lan.linkUp(2);
    const ids = sent.map((line) => line['id']);
    // Alice keeps redialling (1 s, then doubling, from the last message) and flushes her outbox.
    await Promise.all(ids.flatMap((id) => [messageWithId(bob, id, 30_000), deliveredWithId(alice, id, 30_000)]));
    expect(eventsOf(bob, 'message').map((line) => [line['id'], line['text']])).toEqual(ids.map((id, i) => [id, texts[i]]));
    expect(eventsOf(alice, 'delivered').map((line) => line['id'])).toEqual(ids);
    expect(eventsOf(alice, 'link.up').map((line) => line['user'])).toEqual(['bob']);
    expectNoTrouble(alice);
    expectNoTrouble(bob);
  }, 60_000);

  it('keeps chatting while the server is killed and resumes the same sessions when it restarts on the same port', async () => {
    const lan = await useLan(4);
    const server = await startServer(lan, 0);
    const [[alice, bob], carolSpec] = await Promise.all([
      startPeers(lan, server, [
        { index: 1, user: 'alice' },
        { index: 2, user: 'bob' },
      ]) as Promise<[Running, Running]>,
      registerUser(lan, server, { index: 3, user: 'carol' }),
    ]);
    await chat(alice, bob, 'before the outage');

    const pid = server.child.pid;
    if (pid === undefined) throw new Error('the server has no pid');
    process.kill(pid, 'SIGKILL');
    expect(await server.child.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await Promise.all([alice, bob].map((peer) => peer.child.waitForEvent('server.disconnected', { timeoutMs: WAIT_MS, failOnEvents: PEER_FAILURES })));

    // The links do not need the server: chat goes on both ways.
    await chat(alice, bob, 'during the outage');
    await chat(bob, alice, 'still here');

    const restarted = await startServer(lan, 0, server.dataDir, server.port);
    expect(restarted.fingerprint).toBe(server.fingerprint);
    await Promise.all([alice, bob].map((peer) => peer.child.waitForEvent('server.reconnected', { timeoutMs: 30_000, failOnEvents: PEER_FAILURES })));
    for (const peer of [alice, bob]) {
      const states = peer.child.lines.filter((line) => String(line['event']).startsWith('server.')).map((line) => line['event']);
      expect(states).toEqual(['server.disconnected', 'server.reconnected']);
    }

    // A newcomer learns from the restarted server's directory that both are online, and a link to
    // alice proves (through the ticket the server signed) that she kept her session id.
    const carol = await startPeer(lan, restarted, carolSpec);
    await peersUntil(carol, (peers) => {
      expect(peers.map((p) => [p.user, p.online, p.via.includes('directory')])).toEqual([
        ['alice', true, true],
        ['bob', true, true],
      ]);
    });
    await chat(carol, alice, 'hello after the restart');
    const linkToAlice = carol.child.lines.find((line) => line['event'] === 'link.up' && line['user'] === 'alice');
    expect(linkToAlice?.['sessionId']).toBe(alice.sessionId);
    await chat(alice, bob, 'after the restart');
    for (const peer of [alice, bob, carol]) expectNoTrouble(peer);
  }, 90_000);

  it('stays up and still delivers to the real bob when bogus and oversized mDNS records claim to be bob', async () => {
    const lan = await useLan(4);
    const server = await startServer(lan, 0);
    const [alice, bob] = (await startPeers(lan, server, [
      { index: 1, user: 'alice', env: { SALA_LOG: 'debug' } },
      { index: 2, user: 'bob' },
    ])) as [Running, Running];
    await peersUntil(alice, (peers) => expect(entryOf(peers, 'bob')?.via).toEqual(['directory', 'mdns']));
    const bobFingerprint = await announcedFingerprint(lan, 3, 'bob');

    const nowhere = vacantAddress(lan, 250);
    const stale = vacantAddress(lan, 251);
    const flood = startFlood(lan, 3, [
      // A new "device of bob" at addresses where nothing can answer, with a 6 KB TXT record.
      { name: 'bogus-bob', port: 9, txt: ['u=bob', `fp=${randomFingerprint()}`, 'v=1'], padBytes: 6_000, addresses: ['0.0.0.0', '224.0.0.251', nowhere] },
      // Bob's real device at a stale address.
      { name: 'stale-bob', port: bob.port, txt: ['u=bob', `fp=${bobFingerprint}`, 'v=1'], addresses: [stale] },
      // A 250-character user name and a zero port: not records at all.
      { name: 'long-name', port: 9, txt: [`u=${'b'.repeat(250)}`, `fp=${randomFingerprint()}`], padBytes: 3_000, addresses: [lan.host(3).address] },
      { name: 'zero-port', port: 0, txt: ['u=bob', `fp=${randomFingerprint()}`], addresses: [lan.host(3).address] },
    ]);
    await waitForAnnounced(flood, 4);
    // Alice has read all four: the two well-formed ones show under bob, the other two were rejected.
    await peersUntil(alice, (peers) => expect(entryOf(peers, 'bob')?.addresses).toEqual(expect.arrayContaining([`${stale}:${bob.port}`, `${nowhere}:9`])));
    await vi.waitFor(
      () => {
        const rejected = rejectionsIn(alice.child.stderr);
        expect(rejected).toContain('missing or oversized TXT u');
        expect(rejected).toContain('invalid port');
      },
      { timeout: WAIT_MS },
    );

    const sent = await send(alice, 'bob', 'through the noise');
    await messageWithId(bob, sent['id'], 30_000);
    await deliveredWithId(alice, sent['id'], 30_000);
    expect(alice.child.exitStatus).toBeUndefined();
    const peers = await peersOf(alice);
    expect(peers.map((p) => p.user)).toEqual(['bob']);
    expectNoTrouble(alice);
    expectNoTrouble(bob);
  }, 60_000);
});
