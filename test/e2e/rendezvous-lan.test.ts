import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import type { JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';

/**
 * The rendezvous server and its peers on a simulated LAN: discovery by mDNS alone (the clients are
 * never given an address), refusal of an impostor's announcement, and session resume after the
 * server's cable is pulled and plugged back. Every process runs in a harness-made namespace.
 */

const PROBE = 'test/harness/rendezvous-probe.js';
const PASSWORD = 'correct horse battery';
/** mDNS answers plus registration and login; generous for a loaded two-core runner. */
const DISCOVERY_WAIT_MS = 10_000;
const HEARTBEAT_MS = 500;

/** Probe lines that mean a client has failed: a wait for anything else stops on them. */
const CLIENT_FAILURES = ['error', 'warning', 'client.failed', 'mdns.error'];
/** An address on a second interface of the server's host, outside the LAN's subnet. */
const OTHER_SUBNET_ADDRESS = '192.168.77.1';

function probe(lan: Lan, index: number, args: readonly string[]): JsonChild {
  return lan.spawn(index, [distScript(PROBE), ...args]);
}

function addressOf(lan: Lan, index: number): string {
  return lan.host(index).address;
}

/** A fresh server data dir, removed after the LAN (and so the server using it) is gone. */
async function dataDirFor(lan: Lan): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sala-rdv-lan-'));
  onTestFinished(async () => {
    await lan.destroy();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return dir;
}

interface StartedServer {
  readonly child: JsonChild;
  readonly port: number;
  readonly fingerprint: string;
}

async function startServer(lan: Lan, index: number, port?: number): Promise<StartedServer> {
  const dataDir = await dataDirFor(lan);
  const child = probe(lan, index, ['server', dataDir, addressOf(lan, index), ...(port === undefined ? [] : [String(port)])]);
  const listening = await child.waitForEvent('listening', { timeoutMs: DISCOVERY_WAIT_MS });
  expect(listening['host']).toBe(addressOf(lan, index));
  return { child, port: Number(listening['port']), fingerprint: String(listening['fingerprint']) };
}

/** A client that knows only the server's fingerprint and its own interface. */
function startClient(lan: Lan, index: number, user: string, server: StartedServer, heartbeatMs?: number): JsonChild {
  return probe(lan, index, [
    'client',
    user,
    PASSWORD,
    server.fingerprint,
    addressOf(lan, index),
    ...(heartbeatMs === undefined ? [] : [String(heartbeatMs)]),
  ]);
}

function usersOf(line: JsonLine): unknown[] {
  const users = line['users'];
  return Array.isArray(users) ? users : [];
}

function directoryWith(child: JsonChild, user: string): Promise<JsonLine> {
  return child.waitFor((line) => line['event'] === 'directory' && usersOf(line).includes(user), {
    timeoutMs: DISCOVERY_WAIT_MS,
    description: `a directory listing ${user}`,
  });
}

function directoryWithout(child: JsonChild, user: string): Promise<JsonLine> {
  return child.waitFor((line) => line['event'] === 'directory' && !usersOf(line).includes(user), {
    timeoutMs: DISCOVERY_WAIT_MS,
    description: `a directory without ${user}`,
  });
}

describeLan('the rendezvous server on a LAN', () => {
  it('is found by mDNS alone by clients on two other hosts, which then see each other', async () => {
    const lan = await useLan(3);
    const server = await startServer(lan, 0);
    const alice = startClient(lan, 1, 'alice', server);
    const bob = startClient(lan, 2, 'bob', server);

    const [aliceReady, bobReady] = await Promise.all([
      alice.waitForEvent('ready', { timeoutMs: DISCOVERY_WAIT_MS, failOnEvents: CLIENT_FAILURES }),
      bob.waitForEvent('ready', { timeoutMs: DISCOVERY_WAIT_MS, failOnEvents: CLIENT_FAILURES }),
    ]);
    for (const [ready, user] of [[aliceReady, 'alice'], [bobReady, 'bob']] as const) {
      expect(ready).toMatchObject({
        user,
        via: 'mdns',
        host: addressOf(lan, 0),
        port: server.port,
        serverFingerprint: server.fingerprint,
      });
    }
    expect(aliceReady['sessionId']).not.toBe(bobReady['sessionId']);

    await directoryWith(alice, 'bob');
    await directoryWith(bob, 'alice');

    // Bob logs out (stdin closed): the server tells Alice he is gone.
    expect(await bob.stop()).toEqual({ code: 0, signal: null });
    expect(bob.lines.some((line) => line['event'] === 'logout.done')).toBe(true);
    await directoryWithout(alice, 'bob');
    expect(alice.lines.filter((line) => line['event'] === 'mdns.ignored')).toEqual([]);
  });

  it('connects only to the server with the expected key when an impostor is announced too', async () => {
    const lan = await useLan(3);
    // The impostor starts first, on the same port, so its answer is there when the client asks.
    const impostor = await startServer(lan, 2, 7420);
    const server = await startServer(lan, 0, 7420);
    expect(impostor.fingerprint).not.toBe(server.fingerprint);

    const alice = startClient(lan, 1, 'alice', server);
    const ready = await alice.waitForEvent('ready', { timeoutMs: DISCOVERY_WAIT_MS, failOnEvents: CLIENT_FAILURES });
    expect(ready).toMatchObject({ user: 'alice', host: addressOf(lan, 0), port: 7420, serverFingerprint: server.fingerprint });

    const ignored = await alice.waitForEvent('mdns.ignored', { timeoutMs: DISCOVERY_WAIT_MS });
    expect(ignored).toMatchObject({ fp: impostor.fingerprint, host: addressOf(lan, 2), port: 7420 });
    const dialled = alice.lines.filter((line) => line['event'] === 'connecting').map((line) => line['host']);
    expect(dialled).toEqual([addressOf(lan, 0)]);
    expect(impostor.child.exitStatus).toBeUndefined();
  });

  it('reports the server lost when its cable is pulled and resumes the same session when it is back', async () => {
    const lan = await useLan(2);
    const server = await startServer(lan, 0);
    const alice = startClient(lan, 1, 'alice', server, HEARTBEAT_MS);
    const ready = await alice.waitForEvent('ready', { timeoutMs: DISCOVERY_WAIT_MS, failOnEvents: CLIENT_FAILURES });
    await directoryWith(alice, 'alice');

    await lan.linkDown(0); // host 1, the server
    // A ping unanswered within one interval drops the connection: about two intervals.
    const lost = await alice.waitForEvent('server.disconnected', { timeoutMs: 10 * HEARTBEAT_MS, failOnEvents: CLIENT_FAILURES });
    expect(lost['sessionId']).toBe(ready['sessionId']);
    // Keep the cable out until a resume attempt has failed (TCP connect timeout or no ARP answer),
    // so the test shows the client retrying through the outage rather than racing the replug.
    await alice.waitFor((line) => line['event'] === 'client.log' && line['log'] === 'rendezvous.reconnect_failed', {
      timeoutMs: 15_000,
      description: 'a failed resume attempt',
    });
    expect(alice.lines.some((line) => line['event'] === 'server.reconnected' || line['event'] === 'client.failed')).toBe(false);

    await lan.linkUp(0);
    const back = await alice.waitForEvent('server.reconnected', { timeoutMs: 15_000, failOnEvents: CLIENT_FAILURES });
    expect(back['sessionId']).toBe(ready['sessionId']);
    expect(alice.lines.filter((line) => line['event'] === 'ready')).toHaveLength(1);
  });

  // bonjour-service's Service.records() adds an A/AAAA record for every non-internal address of
  // every interface, while the server listens only on `host`: the advertiser must filter them, or a
  // server with a second interface (Wi-Fi + Ethernet, docker0…) advertises dead addresses.
  it('advertises only the address the server listens on when its host has a second interface', async () => {
    const lan = await useLan(2);
    // A second, unrelated link inside host 1's namespace (gone with the namespace).
    await lan.exec(0, 'ip', ['link', 'add', 'extra0', 'type', 'veth', 'peer', 'name', 'extra1']);
    await lan.exec(0, 'ip', ['address', 'add', `${OTHER_SUBNET_ADDRESS}/24`, 'dev', 'extra0']);
    await lan.exec(0, 'ip', ['link', 'set', 'extra0', 'up']);
    await lan.exec(0, 'ip', ['link', 'set', 'extra1', 'up']);
    const server = await startServer(lan, 0);
    const alice = startClient(lan, 1, 'alice', server);

    const found = await alice.waitForEvent('mdns.found', { timeoutMs: DISCOVERY_WAIT_MS, failOnEvents: CLIENT_FAILURES });
    expect(found['port']).toBe(server.port);
    expect(found['addresses']).toEqual([addressOf(lan, 0)]);
  });
});
