import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import type { ExitStatus, JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';

/**
 * findServers on a simulated LAN: real rendezvous servers announce `_sala-rendezvous._tcp` on
 * their hosts, and findServers runs in another host's namespace (server-finder-probe) knowing no
 * address. Every process runs in a harness-made namespace.
 */

const SERVER_PROBE = 'test/harness/rendezvous-probe.js';
const FINDER_PROBE = 'test/harness/server-finder-probe.js';
/** Server start-up plus mDNS answers; generous for a loaded two-core runner. */
const WAIT_MS = 10_000;
/**
 * Long enough for a second server's answer to the same query to arrive on a loaded runner; the
 * default 500 ms is for people, the tests must not depend on scheduling.
 */
const TEST_SETTLE_MS = 2_000;
/** The finder exits by itself once findServers has settled, unless a socket or timer is left. */
const EXIT_WAIT_MS = 5_000;
const NOBODY_FP = 'AAAA-AAAA-AAAA-AAAA';

interface StartedServer {
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
}

async function startServer(lan: Lan, index: number): Promise<StartedServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sala-finder-lan-'));
  onTestFinished(async () => {
    await lan.destroy();
    await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
  });
  const host = lan.host(index).address;
  const child = lan.spawn(index, [distScript(SERVER_PROBE), 'server', dataDir, host]);
  const listening = await child.waitForEvent('listening', { timeoutMs: WAIT_MS });
  return { host, port: Number(listening['port']), fingerprint: String(listening['fingerprint']) };
}

function startFinder(lan: Lan, index: number, options: { timeoutMs: number; settleMs?: number; wanted?: string }): JsonChild {
  return lan.spawn(index, [
    distScript(FINDER_PROBE),
    lan.host(index).address,
    String(options.timeoutMs),
    String(options.settleMs ?? TEST_SETTLE_MS),
    ...(options.wanted === undefined ? [] : [options.wanted]),
  ]);
}

function candidateOf(server: StartedServer): Record<string, unknown> {
  return {
    name: `Sala rendezvous ${server.fingerprint.slice(0, 4)}`,
    host: server.host,
    port: server.port,
    fingerprint: server.fingerprint,
  };
}

function candidatesOf(line: JsonLine): unknown[] {
  const candidates = line['candidates'];
  return Array.isArray(candidates) ? candidates : [];
}

function done(finder: JsonChild): Promise<JsonLine> {
  return finder.waitForEvent('finder.done', { timeoutMs: WAIT_MS, failOnEvents: ['error', 'warning', 'finder.failed'] });
}

function failed(finder: JsonChild, timeoutMs = WAIT_MS): Promise<JsonLine> {
  return finder.waitForEvent('finder.failed', { timeoutMs, failOnEvents: ['error', 'warning', 'finder.done'] });
}

/** The finder's exit status, or 'running' if it has not exited within EXIT_WAIT_MS. */
async function exitOf(finder: JsonChild): Promise<ExitStatus | 'running'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'running'>((resolve) => {
    timer = setTimeout(() => resolve('running'), EXIT_WAIT_MS);
  });
  try {
    return await Promise.race([finder.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describeLan('findServers on a LAN', () => {
  it('finds a server by mDNS alone, with its host, port and fingerprint, and closes its socket', async () => {
    const lan = await useLan(2);
    const server = await startServer(lan, 0);
    const finder = startFinder(lan, 1, { timeoutMs: WAIT_MS });

    const result = await done(finder);
    expect(candidatesOf(result)).toEqual([candidateOf(server)]);
    expect(await exitOf(finder)).toEqual({ code: 0, signal: null });
  });

  it('returns both servers when two are announced', async () => {
    const lan = await useLan(3);
    const [first, second] = await Promise.all([startServer(lan, 0), startServer(lan, 2)]);
    expect(first.fingerprint).not.toBe(second.fingerprint);
    const finder = startFinder(lan, 1, { timeoutMs: WAIT_MS });

    const candidates = candidatesOf(await done(finder));
    expect(candidates).toHaveLength(2);
    expect(candidates).toEqual(expect.arrayContaining([candidateOf(first), candidateOf(second)]));
  });

  it('returns only the server whose fingerprint isWanted accepts when two are announced', async () => {
    const lan = await useLan(3);
    const [wanted, other] = await Promise.all([startServer(lan, 0), startServer(lan, 2)]);
    const finder = startFinder(lan, 1, { timeoutMs: WAIT_MS, wanted: wanted.fingerprint });

    const result = await done(finder);
    expect(candidatesOf(result)).toEqual([candidateOf(wanted)]);
    // The other server was heard and refused, not merely missed.
    const considered = finder.lines.filter((line) => line['event'] === 'finder.considered');
    expect(considered).toContainEqual({ event: 'finder.considered', candidate: candidateOf(other), isWanted: false });
  });

  it('rejects with SALA_E_SERVER_UNREACHABLE after timeoutMs when no server is announced', async () => {
    const lan = await useLan(2);
    const finder = startFinder(lan, 1, { timeoutMs: 1_000 });

    const result = await failed(finder);
    expect(result).toMatchObject({
      code: 'SALA_E_SERVER_UNREACHABLE',
      message: 'No Sala server answered on the LAN within 1 s; give its address with --server HOST:PORT.',
    });
    expect(result['elapsedMs']).toBeGreaterThanOrEqual(1_000);
    expect(await exitOf(finder)).toEqual({ code: 0, signal: null });
  });

  it('rejects with SALA_E_SERVER_UNREACHABLE when the only server announced is not wanted', async () => {
    const lan = await useLan(2);
    const server = await startServer(lan, 0);
    const finder = startFinder(lan, 1, { timeoutMs: 3_000, wanted: NOBODY_FP });

    const considered = await finder.waitForEvent('finder.considered', { timeoutMs: WAIT_MS });
    expect(considered).toMatchObject({ candidate: candidateOf(server), isWanted: false });
    expect(await failed(finder)).toMatchObject({ code: 'SALA_E_SERVER_UNREACHABLE' });
  });

  it('rejects with SALA_E_ABORTED when its signal is aborted, long before timeoutMs', async () => {
    const lan = await useLan(2);
    const timeoutMs = 60_000;
    const finder = startFinder(lan, 1, { timeoutMs });
    await finder.waitForEvent('finder.started', { timeoutMs: WAIT_MS });

    finder.send({ cmd: 'abort' });
    const result = await failed(finder);
    expect(result['code']).toBe('SALA_E_ABORTED');
    expect(result['elapsedMs']).toBeLessThan(timeoutMs);
    expect(await exitOf(finder)).toEqual({ code: 0, signal: null });
  });
});
