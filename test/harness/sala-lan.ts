/**
 * The real Sala programs on a simulated LAN (see lan.ts), for the end-to-end LAN tests: the
 * rendezvous server (through rendezvous-probe), `sala register` and `sala chat --json` peers, each
 * in its own host namespace, with temp dirs that outlive every process using them, and the waits
 * and requests the tests make on a peer's JSON lines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished, vi } from 'vitest';
import type { JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, type Lan } from './lan.js';

/** The `sala` CLI, relative to dist/. */
export const SALA = 'peer/cli.js';
/** The rendezvous server's probe, relative to dist/. */
export const SERVER_PROBE = 'test/harness/rendezvous-probe.js';
/** Every user's password, written as a raw line on stdin: register and chat read it the same way. */
export const PASSWORD = 'correct horse battery';
/** mDNS lookup (≤ 5 s) plus registration or login, on a loaded two-core runner. */
export const START_WAIT_MS = 15_000;
/** A peer's or a link's answer, or an mDNS announcement reaching the others. */
export const WAIT_MS = 10_000;
/** Events that mean a peer is in trouble: a wait for anything else stops on them. */
export const PEER_FAILURES: readonly string[] = ['error', 'warning', 'file.failed'];
/** Lost-segment retransmissions that show a cable has been out for a while (RTO 0.2 s, doubling: about 3 s). */
export const MIN_RETRANSMISSIONS = 4;

/** The rendezvous server running on a LAN host. */
export interface Server {
  readonly child: JsonChild;
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
  /** Its data dir, to restart it with the same identity and users. */
  readonly dataDir: string;
}

/** Who runs a peer, where, and with which options. */
export interface PeerSpec {
  /** The LAN host it runs on. */
  readonly index: number;
  readonly user: string;
  /** Its --data dir. */
  readonly dataDir: string;
  /** Pin the peer to its LAN address with --interface (default true). */
  readonly isPinned?: boolean;
  /** Where received files go (--downloads); with --accept-files when set. */
  readonly downloads?: string;
  /** Merged over the environment of `sala chat`. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A `sala chat --json` peer that has printed `ready`. */
export interface Running {
  readonly child: JsonChild;
  readonly user: string;
  readonly host: string;
  readonly sessionId: string;
  readonly port: number;
  /** `host:port` where this peer accepts links, as the others should list it. */
  readonly address: string;
  /** What it was started with, to start it again on the same data. */
  readonly spec: PeerSpec;
}

/** One entry of the answer to a `peers` command. */
export interface PeerEntry {
  user: string;
  online: boolean;
  addresses: string[];
  via: string[];
}

/** A fresh directory under os.tmpdir(), removed after the LAN (and so every process using it) is gone. */
export async function tempDirFor(lan: Lan, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sala-lan-${label}-`));
  onTestFinished(async () => {
    await lan.destroy();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return dir;
}

/**
 * The rendezvous server on host `index`, listening on its LAN address: in a fresh data dir, or in
 * `dataDir` on `port` to restart one.
 */
export async function startServer(lan: Lan, index: number, dataDir?: string, port?: number): Promise<Server> {
  const dir = dataDir ?? (await tempDirFor(lan, 'server'));
  const host = lan.host(index).address;
  const child = lan.spawn(index, [distScript(SERVER_PROBE), 'server', dir, host, ...(port === undefined ? [] : [String(port)])]);
  const listening = await child.waitForEvent('listening', { timeoutMs: START_WAIT_MS });
  expect(listening['host']).toBe(host);
  return { child, host, port: Number(listening['port']), fingerprint: String(listening['fingerprint']), dataDir: dir };
}

/** `sala register`, run on the host where the user will chat, finding the server by mDNS. */
async function register(lan: Lan, server: Server, spec: Pick<PeerSpec, 'index' | 'user' | 'dataDir'>): Promise<void> {
  const child = lan.spawn(spec.index, [
    distScript(SALA),
    'register',
    '--user',
    spec.user,
    '--server-key',
    server.fingerprint,
    '--password-stdin',
    '--json',
    '--data',
    spec.dataDir,
  ]);
  child.writeLine(PASSWORD);
  const registered = await child.waitForEvent('registered', { timeoutMs: START_WAIT_MS });
  expect(registered['user']).toBe(spec.user);
  // Closing stdin: `sala register --password-stdin` does not exit on its own while stdin stays open
  // (see the report; register never pauses stdin after reading the password line).
  expect(await child.stop()).toEqual({ code: 0, signal: null });
}

/** `sala chat --json` of a registered user, without --server: the server is found by mDNS alone. */
export async function startPeer(lan: Lan, server: Server, spec: PeerSpec): Promise<Running> {
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
      spec.dataDir,
      '--password-stdin',
      '--json',
      ...(spec.isPinned === false ? [] : ['--interface', host]),
      ...(spec.downloads === undefined ? [] : ['--downloads', spec.downloads, '--accept-files']),
    ],
    { label: `${spec.user}@${host}`, ...(spec.env === undefined ? {} : { env: spec.env }) },
  );
  child.writeLine(PASSWORD);
  const ready = await child.waitForEvent('ready', { timeoutMs: START_WAIT_MS });
  expect(ready).toMatchObject({ user: spec.user, serverFingerprint: server.fingerprint });
  const listen = ready['listen'] as { host: string; port: number };
  return { child, user: spec.user, host, sessionId: String(ready['sessionId']), port: listen.port, address: `${host}:${listen.port}`, spec };
}

/**
 * Gives the user a fresh data dir and runs `sala register` there; resolves with the spec to start
 * the user's peer with.
 */
export async function registerUser(lan: Lan, server: Server, spec: Omit<PeerSpec, 'dataDir'>): Promise<PeerSpec> {
  const withDir: PeerSpec = { ...spec, dataDir: await tempDirFor(lan, spec.user) };
  await register(lan, server, withDir);
  return withDir;
}

/** Registers every user (in parallel, each in a fresh data dir), then starts their peers. */
export async function startPeers(lan: Lan, server: Server, specs: readonly Omit<PeerSpec, 'dataDir'>[]): Promise<Running[]> {
  const registered = await Promise.all(specs.map((spec) => registerUser(lan, server, spec)));
  return Promise.all(registered.map((spec) => startPeer(lan, server, spec)));
}

let refCounter = 0;
/** A `ref` no other command of this test file has used. */
export function nextRef(what: string): string {
  refCounter += 1;
  return `${what}-${refCounter}`;
}

/** Sends the command `cmd` (with `fields` and a fresh ref) and resolves with the `event` line answering it. */
async function request(peer: Running, cmd: string, fields: Record<string, unknown>, event: string): Promise<JsonLine> {
  const ref = nextRef(cmd);
  const answer = peer.child.waitFor((line) => line['event'] === event && line['ref'] === ref, { timeoutMs: WAIT_MS, description: `${event} ${ref}` });
  peer.child.send({ cmd, ...fields, ref });
  return answer;
}

/** The answer to a `peers` command. */
export async function peersOf(peer: Running): Promise<PeerEntry[]> {
  return (await request(peer, 'peers', {}, 'peers'))['peers'] as PeerEntry[];
}

/** Asks `peers` until `check` passes (it throws while not yet): mDNS sightings arrive when they do. */
export async function peersUntil(peer: Running, check: (peers: PeerEntry[]) => void, timeoutMs = 15_000): Promise<PeerEntry[]> {
  return vi.waitFor(
    async () => {
      const peers = await peersOf(peer);
      check(peers);
      return peers;
    },
    { timeout: timeoutMs, interval: 250 },
  );
}

/** `user`'s entry in a `peers` answer, if listed. */
export function entryOf(peers: readonly PeerEntry[], user: string): PeerEntry | undefined {
  return peers.find((p) => p.user === user);
}

/** The answer to a `history` command: the `history` line for the conversation with `other`. */
export function historyOf(peer: Running, other: string): Promise<JsonLine> {
  return request(peer, 'history', { with: other }, 'history');
}

/**
 * Sends `text` and resolves with its `sent` event (which carries the ref). A trouble event (see
 * PEER_FAILURES), but a `warning` whose code is in `expectedWarnings`, ends the wait.
 */
export async function send(from: Running, to: string, text: string, expectedWarnings: readonly string[] = []): Promise<JsonLine> {
  const ref = nextRef('send');
  const isTrouble = (line: JsonLine): boolean =>
    PEER_FAILURES.includes(String(line['event'])) && !(line['event'] === 'warning' && expectedWarnings.includes(String(line['code'])));
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

/** The `message` line with message id `id` on the receiving peer. */
export function messageWithId(to: Running, id: unknown, timeoutMs = WAIT_MS): Promise<JsonLine> {
  return to.child.waitFor((line) => line['event'] === 'message' && line['id'] === id, { timeoutMs, description: `message ${String(id)}` });
}

/** The `delivered` line with message id `id` on the sending peer. */
export function deliveredWithId(from: Running, id: unknown, timeoutMs = WAIT_MS): Promise<JsonLine> {
  return from.child.waitFor((line) => line['event'] === 'delivered' && line['id'] === id, { timeoutMs, description: `delivered ${String(id)}` });
}

/**
 * One message, end to end: `sent`, then the receiver's `message` with the same id, then
 * `delivered`. Resolves with the message id.
 */
export async function chat(from: Running, to: Running, text: string): Promise<string> {
  const sent = await send(from, to.user, text);
  const id = sent['id'];
  expect(typeof id).toBe('string');
  const [message, delivered] = await Promise.all([messageWithId(to, id), deliveredWithId(from, id)]);
  expect(message).toMatchObject({ from: from.user, text });
  expect(delivered).toMatchObject({ id, to: to.user });
  expect(from.child.lines.indexOf(sent)).toBeLessThan(from.child.lines.indexOf(delivered));
  return String(id);
}

/** Every line of `peer` with this `event` so far. */
export function eventsOf(peer: Running, event: string): JsonLine[] {
  return peer.child.lines.filter((line) => line['event'] === event);
}

/** No trouble line (see PEER_FAILURES) so far, but those whose code is `allowed`. */
export function expectNoTrouble(peer: Running, allowed: readonly string[] = []): void {
  const trouble = peer.child.lines.filter((line) => PEER_FAILURES.includes(String(line['event'])) && !allowed.includes(String(line['code'])));
  expect(trouble, `${peer.user} reported trouble`).toEqual([]);
}

/**
 * Waits until host `index` has retransmitted lost segments to `to` at least MIN_RETRANSMISSIONS
 * times on one TCP connection (as `ss` shows): the cable has been out for a while. Resolves with
 * that count and the `ss` output.
 */
export async function retransmittedTo(lan: Lan, index: number, to: string): Promise<{ count: number; ss: string }> {
  return vi.waitFor(
    async () => {
      const ss = await lan.exec(index, 'ss', ['-tinH', 'dst', to]);
      const count = Math.max(0, ...[...ss.matchAll(/retrans:\d+\/(\d+)/g)].map((m) => Number(m[1])));
      expect(count, ss).toBeGreaterThanOrEqual(MIN_RETRANSMISSIONS);
      return { count, ss };
    },
    { timeout: WAIT_MS, interval: 100 },
  );
}
