import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished, vi } from 'vitest';
import type { JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';

/**
 * Issue 5 on a simulated LAN: the real `sala` CLI (JSON lines) on three hosts and the real
 * rendezvous server on a fourth. Peers find the server by mDNS alone (no --server), see each other
 * through the directory and mDNS, and chat over direct links; a peer cannot pass for another user;
 * messages survive a pulled cable and a killed server; bad mDNS answers do not hurt. Every process
 * runs in a harness-made namespace.
 */

const SALA = 'peer/cli.js';
const SERVER_PROBE = 'test/harness/rendezvous-probe.js';
const PEER_PROBE = 'test/harness/peer-probe.js';
const FLOOD_PROBE = 'test/harness/mdns-flood-probe.js';
/**
 * JsonChild.send() writes JSON, so the password line is this string in quotes; register and chat
 * both read it the same way, so the quotes are simply part of the password.
 */
const PASSWORD = 'correct horse battery';
/** mDNS lookup (≤ 5 s) plus registration or login, on a loaded two-core runner. */
const START_WAIT_MS = 15_000;
/** A peer's or a link's answer, or an mDNS announcement reaching the others. */
const WAIT_MS = 10_000;
/** Events that mean a peer is in trouble: a wait for anything else stops on them. */
const PEER_FAILURES = ['error', 'warning'];
/** Lost-segment retransmissions that show a cable has been out for a while (RTO 0.2 s, doubling). */
const MIN_RETRANSMISSIONS = 4;

interface Server {
  readonly child: JsonChild;
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
  readonly dataDir: string;
}

interface Running {
  readonly child: JsonChild;
  readonly user: string;
  readonly host: string;
  readonly sessionId: string;
  readonly port: number;
  /** `host:port` where this peer accepts links, as the others should list it. */
  readonly address: string;
}

interface PeerEntry {
  user: string;
  online: boolean;
  addresses: string[];
  via: string[];
}

/** A LAN of `hostCount` hosts, destroyed when the test ends. */
function lanOf(hostCount: number): Promise<Lan> {
  return useLan(hostCount);
}

/** A fresh directory, removed after the LAN (and so every process using it) is gone. */
async function tempDirFor(lan: Lan, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sala-peer-lan-${label}-`));
  onTestFinished(async () => {
    await lan.destroy();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return dir;
}

async function startServer(lan: Lan, index: number, dataDir?: string, port?: number): Promise<Server> {
  const dir = dataDir ?? (await tempDirFor(lan, 'server'));
  const host = lan.host(index).address;
  const child = lan.spawn(index, [distScript(SERVER_PROBE), 'server', dir, host, ...(port === undefined ? [] : [String(port)])]);
  const listening = await child.waitForEvent('listening', { timeoutMs: START_WAIT_MS });
  expect(listening['host']).toBe(host);
  return { child, host, port: Number(listening['port']), fingerprint: String(listening['fingerprint']), dataDir: dir };
}

/** `sala register`, run on the host where the user will chat, finding the server by mDNS. */
async function register(lan: Lan, index: number, user: string, server: Server, dataDir: string): Promise<void> {
  const child = lan.spawn(index, [
    distScript(SALA),
    'register',
    '--user',
    user,
    '--server-key',
    server.fingerprint,
    '--password-stdin',
    '--json',
    '--data',
    dataDir,
  ]);
  child.send(PASSWORD);
  const registered = await child.waitForEvent('registered', { timeoutMs: START_WAIT_MS });
  expect(registered['user']).toBe(user);
  // Closing stdin: `sala register --password-stdin` does not exit on its own while stdin stays open
  // (see the report; register never pauses stdin after reading the password line).
  expect(await child.stop()).toEqual({ code: 0, signal: null });
}

interface PeerSpec {
  readonly index: number;
  readonly user: string;
  /** Pin the peer to its LAN address with --interface (default true). */
  readonly isPinned?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

/** `sala chat` without --server: the server is found by mDNS alone. */
async function startPeer(lan: Lan, server: Server, spec: PeerSpec, dataDir: string): Promise<Running> {
  const host = lan.host(spec.index).address;
  const child = lan.spawn(
    spec.index,
    [
      distScript(SALA),
      'chat',
      '--user',
      spec.user,
      '--server-key',
      server.fingerprint,
      '--data',
      dataDir,
      '--password-stdin',
      '--json',
      ...(spec.isPinned === false ? [] : ['--interface', host]),
    ],
    { label: `${spec.user}@${host}`, ...(spec.env === undefined ? {} : { env: spec.env }) },
  );
  child.send(PASSWORD);
  const ready = await child.waitForEvent('ready', { timeoutMs: START_WAIT_MS });
  expect(ready).toMatchObject({ user: spec.user, serverFingerprint: server.fingerprint });
  const listen = ready['listen'] as { host: string; port: number };
  return { child, user: spec.user, host, sessionId: String(ready['sessionId']), port: listen.port, address: `${host}:${listen.port}` };
}

/** Registers every user (in parallel), then starts their peers. */
async function startPeers(lan: Lan, server: Server, specs: readonly PeerSpec[]): Promise<Running[]> {
  const dirs = await Promise.all(specs.map((spec) => tempDirFor(lan, spec.user)));
  await Promise.all(specs.map((spec, i) => register(lan, spec.index, spec.user, server, dirs[i] ?? '')));
  return Promise.all(specs.map((spec, i) => startPeer(lan, server, spec, dirs[i] ?? '')));
}

let refCounter = 0;
function nextRef(what: string): string {
  refCounter += 1;
  return `${what}-${refCounter}`;
}

/** The answer to a `peers` command. */
async function peersOf(peer: Running): Promise<PeerEntry[]> {
  const ref = nextRef('peers');
  const answer = peer.child.waitFor((line) => line['event'] === 'peers' && line['ref'] === ref, { timeoutMs: WAIT_MS, description: `peers ${ref}` });
  peer.child.send({ cmd: 'peers', ref });
  const line = await answer;
  return line['peers'] as PeerEntry[];
}

/** Asks `peers` until `check` passes (it throws while not yet): mDNS sightings arrive when they do. */
async function peersUntil(peer: Running, check: (peers: PeerEntry[]) => void, timeoutMs = 15_000): Promise<PeerEntry[]> {
  return vi.waitFor(
    async () => {
      const peers = await peersOf(peer);
      check(peers);
      return peers;
    },
    { timeout: timeoutMs, interval: 250 },
  );
}

function entryOf(peers: readonly PeerEntry[], user: string): PeerEntry | undefined {
  return peers.find((p) => p.user === user);
}

/**
 * Sends `text` and resolves with its `sent` event (which carries the ref). An `error`, or a
 * `warning` whose code is not in `expectedWarnings`, ends the wait.
 */
async function send(from: Running, to: string, text: string, expectedWarnings: readonly string[] = []): Promise<JsonLine> {
  const ref = nextRef('send');
  const isTrouble = (line: JsonLine): boolean =>
    line['event'] === 'error' || (line['event'] === 'warning' && !expectedWarnings.includes(String(line['code'])));
  const sent = from.child.waitFor((line) => (line['event'] === 'sent' && line['ref'] === ref) || isTrouble(line), {
    timeoutMs: WAIT_MS,
    description: `sent ${ref}`,
  });
  from.child.send({ cmd: 'send', to, text, ref });
  const line = await sent;
  if (line['event'] !== 'sent') throw new Error(`${from.user} printed ${JSON.stringify(line)} instead of sent\n${from.child.describeState()}`);
  expect(line['to']).toBe(to);
  return line;
}

function messageWithId(to: Running, id: unknown, timeoutMs = WAIT_MS): Promise<JsonLine> {
  return to.child.waitFor((line) => line['event'] === 'message' && line['id'] === id, { timeoutMs, description: `message ${String(id)}` });
}

function deliveredWithId(from: Running, id: unknown, timeoutMs = WAIT_MS): Promise<JsonLine> {
  return from.child.waitFor((line) => line['event'] === 'delivered' && line['id'] === id, { timeoutMs, description: `delivered ${String(id)}` });
}

/** One message, end to end: `sent`, then the receiver's `message` with the same id, then `delivered`. */
async function chat(from: Running, to: Running, text: string): Promise<string> {
  const sent = await send(from, to.user, text);
  const id = sent['id'];
  expect(typeof id).toBe('string');
  const [message, delivered] = await Promise.all([messageWithId(to, id), deliveredWithId(from, id)]);
  expect(message).toMatchObject({ from: from.user, text });
  expect(delivered).toMatchObject({ id, to: to.user });
  expect(from.child.lines.indexOf(sent)).toBeLessThan(from.child.lines.indexOf(delivered));
  return String(id);
}

function eventsOf(peer: Running, event: string): JsonLine[] {
  return peer.child.lines.filter((line) => line['event'] === event);
}

/** No `error` or `warning` line so far, but those `allowed` (by code). */
function expectNoTrouble(peer: Running, allowed: readonly string[] = []): void {
  const trouble = peer.child.lines.filter((line) => PEER_FAILURES.includes(String(line['event'])) && !allowed.includes(String(line['code'])));
  expect(trouble, `${peer.user} reported trouble`).toEqual([]);
}

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
    const lan = await lanOf(4);
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
    const lan = await lanOf(4);
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
    const lan = await lanOf(4);
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
    const lan = await lanOf(4);
    const server = await startServer(lan, 0);
    const bobDir = await tempDirFor(lan, 'bob');
    const [[alice, mallory]] = await Promise.all([
      startPeers(lan, server, [
        { index: 1, user: 'alice' },
        { index: 3, user: 'mallory' },
      ]) as Promise<[Running, Running]>,
      register(lan, 2, 'bob', server, bobDir),
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
    const bob = await startPeer(lan, server, { index: 2, user: 'bob' }, bobDir);
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
    const lan = await lanOf(3);
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
    await vi.waitFor(
      async () => {
        const ss = await lan.exec(1, 'ss', ['-tinH', 'dst', bob.host]);
        const retransmissions = Math.max(0, ...[...ss.matchAll(/retrans:\d+\/(\d+)/g)].map((m) => Number(m[1])));
        expect(retransmissions, ss).toBeGreaterThanOrEqual(MIN_RETRANSMISSIONS);
      },
      { timeout: WAIT_MS, interval: 100 },
    );
    expect(eventsOf(bob, 'message').map((line) => line['text'])).toEqual(['before the cable is pulled']);

    await lan.linkUp(2);
    const ids = sent.map((line) => line['id']);
    await Promise.all(ids.map((id) => messageWithId(bob, id, 30_000)));
    await Promise.all(ids.map((id) => deliveredWithId(alice, id, 30_000)));
    const received = eventsOf(bob, 'message').slice(1);
    expect(received.map((line) => [line['id'], line['text']])).toEqual(ids.map((id, i) => [id, texts[i]]));

    // Bob's history holds each once, in order, and alice's shows them delivered.
    const historyOf = async (peer: Running, other: string): Promise<JsonLine> => {
      const ref = nextRef('history');
      const answer = peer.child.waitFor((line) => line['event'] === 'history' && line['ref'] === ref, { timeoutMs: WAIT_MS, description: `history ${ref}` });
      peer.child.send({ cmd: 'history', with: other, ref });
      return answer;
    };
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
    const lan = await lanOf(3);
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
    const lan = await lanOf(4);
    const server = await startServer(lan, 0);
    const carolDir = await tempDirFor(lan, 'carol');
    const [[alice, bob]] = await Promise.all([
      startPeers(lan, server, [
        { index: 1, user: 'alice' },
        { index: 2, user: 'bob' },
      ]) as Promise<[Running, Running]>,
      register(lan, 3, 'carol', server, carolDir),
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
    const carol = await startPeer(lan, restarted, { index: 3, user: 'carol' }, carolDir);
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
    const lan = await lanOf(4);
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
