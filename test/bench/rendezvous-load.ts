/**
 * `npm run bench:rendezvous`: the rendezvous server under 1,000 logged-in sessions on 127.0.0.1.
 *
 * Two phases, each against a fresh server in its own process (rendezvous-server-process.ts):
 *   1. Login throughput with the real argon2id cost (64 MiB, 2 passes, 2 workers): SALA_BENCH_RDV_
 *      REAL_LOGINS logins, 12 in flight, and the server's event-loop delay (p99) meanwhile.
 *      The ceiling is cores ÷ one hash: the figure is compared with 2 ÷ the measured hash time.
 *   2. SALA_BENCH_RDV_SESSIONS sessions (cheap hashing, so the phase measures the server, not
 *      argon2): event-loop delay while they log in, server RSS with all of them connected, and the
 *      time for one directory change to reach every session (median of 5 changes).
 * Prints a table with the targets of issue 4 (RSS < 300 MiB, fan-out < 1 s, loop p99 < 20 ms).
 * Environment: SALA_BENCH_RDV_SESSIONS (default 1000), SALA_BENCH_RDV_REAL_LOGINS (default 60),
 * SALA_BENCH_SERVER_NODE_ARGS (node flags for the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, initCrypto, JsonChild, type JsonLine } from '../../common/index.js';
import { RendezvousClient } from '../../peer/rendezvous/rendezvous-client.js';
import { PasswordHasher } from '../../rendezvous/auth/password-hasher.js';

const here = dirname(fileURLToPath(import.meta.url));
const serverScript = join(here, 'rendezvous-server-process.js');
const PASSWORD = 'bench password 1';
const SESSIONS = Number(process.env['SALA_BENCH_RDV_SESSIONS'] ?? 1000);
const REAL_LOGINS = Number(process.env['SALA_BENCH_RDV_REAL_LOGINS'] ?? 60);
const IN_FLIGHT = 12;
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

interface RunningServer {
  child: JsonChild;
  port: number;
  fingerprint: string;
  dataDir: string;
}

async function startServer(users: number, hashing: 'real' | 'cheap'): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sala-bench-rdv-'));
  const nodeArgs = (process.env['SALA_BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = new JsonChild(process.execPath, [...nodeArgs, serverScript, dataDir, String(users), hashing], { label: 'bench server' });
  const line = await child.waitForEvent('listening', { timeoutMs: 600_000 });
  return { child, port: Number(line['port']), fingerprint: String(line['fingerprint']), dataDir };
}

async function stopServer(server: RunningServer): Promise<void> {
  await server.child.stop(10_000);
  rmSync(server.dataDir, { recursive: true, force: true });
}

async function stats(server: RunningServer): Promise<JsonLine> {
  server.child.send({ cmd: 'stats' });
  return server.child.waitForEvent('stats', { timeoutMs: 30_000 });
}

async function resetLoop(server: RunningServer): Promise<void> {
  server.child.send({ cmd: 'reset-loop' });
  await server.child.waitForEvent('loop-reset', { timeoutMs: 30_000 });
}

/** Logs `count` users in, `IN_FLIGHT` at a time; returns the clients and the elapsed seconds. */
async function loginMany(server: RunningServer, count: number, offset = 0): Promise<{ clients: RendezvousClient[]; seconds: number }> {
  const clients: RendezvousClient[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const client = new RendezvousClient({
        host: '127.0.0.1',
        port: server.port,
        user: `bench${(offset + index) % SESSIONS}`,
        identity: generateIdentity(),
        expectedFingerprint: server.fingerprint,
        heartbeatIntervalMs: 60_000,
      });
      client.on('error', () => undefined);
      await client.login(PASSWORD);
      clients.push(client);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { clients, seconds: (performance.now() - started) / 1000 };
}

/** Time from an announce until every other client has seen it in a directory update. */
async function fanOut(clients: readonly RendezvousClient[], announcer: RendezvousClient, port: number): Promise<number> {
  const others = clients.filter((c) => c !== announcer);
  const started = performance.now();
  const arrivals = others.map(
    (client) =>
      new Promise<number>((resolve) => {
        const onChange = (change: { online: { sessionId: string; addresses: { port: number }[] }[] }): void => {
          if (!change.online.some((e) => e.sessionId === announcer.sessionId && e.addresses.some((a) => a.port === port))) return;
          client.off('directory', onChange);
          resolve(performance.now());
        };
        client.on('directory', onChange);
      }),
  );
  announcer.announce([{ host: '127.0.0.1', port }]);
  const times = await Promise.all(arrivals);
  return Math.max(...times) - started;
}

/** The median time of one verify with the production parameters, on one worker. */
async function measureHashMs(): Promise<number> {
  const hasher = new PasswordHasher({ workers: 1 });
  try {
    const hash = await hasher.hash(PASSWORD);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await hasher.verify(hash, PASSWORD);
      times.push(performance.now() - started);
    }
    return median(times);
  } finally {
    await hasher.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  await initCrypto();
  const rows: [string, string, string, string][] = [];
  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

  progress('measuring one argon2id hash…');
  const hashMs = await measureHashMs();
  progress(`phase 1: ${REAL_LOGINS} logins with the real argon2id cost…`);
  const real = await startServer(REAL_LOGINS, 'real');
  try {
    await resetLoop(real);
    const { clients, seconds } = await loginMany(real, REAL_LOGINS);
    const during = await stats(real);
    const perSecond = REAL_LOGINS / seconds;
    const ceiling = (cpus().length * 1000) / hashMs;
    rows.push(['one argon2id verify (64 MiB, 2 passes), median of 5', `${hashMs.toFixed(0)} ms`, '', '']);
    rows.push([
      'logins/s, real argon2id (2 workers)',
      `${perSecond.toFixed(1)} (${((perSecond / ceiling) * 100).toFixed(0)} % of ${ceiling.toFixed(1)})`,
      'close to cores ÷ one hash',
      verdict(perSecond >= 0.7 * ceiling),
    ]);
    rows.push(['event-loop delay p99 during real logins', `${Number(during['loopP99Ms']).toFixed(1)} ms`, '< 20 ms', verdict(Number(during['loopP99Ms']) < 20)]);
    for (const client of clients) client.close();
  } finally {
    await stopServer(real);
  }

  progress(`phase 2: ${SESSIONS} sessions…`);
  const server = await startServer(SESSIONS, 'cheap');
  const clients: RendezvousClient[] = [];
  try {
    await resetLoop(server);
    const logged = await loginMany(server, SESSIONS);
    clients.push(...logged.clients);
    const afterLogins = await stats(server);
    rows.push([`event-loop delay p99 during ${SESSIONS} logins`, `${Number(afterLogins['loopP99Ms']).toFixed(1)} ms`, '< 20 ms', verdict(Number(afterLogins['loopP99Ms']) < 20)]);
    rows.push([`logins/s, cheap hashing (${IN_FLIGHT} in flight)`, (SESSIONS / logged.seconds).toFixed(0), '', '']);
    // Let the directory updates of the login burst drain before measuring fan-out.
    await new Promise((r) => setTimeout(r, 2_000));
    await resetLoop(server);
    const fanOuts: number[] = [];
    for (let i = 0; i < 5; i++) fanOuts.push(await fanOut(clients, clients[i] as RendezvousClient, 40_000 + i));
    const fanOutMs = median(fanOuts);
    rows.push([`directory change reaching all ${SESSIONS - 1} others (median of 5)`, `${fanOutMs.toFixed(0)} ms`, '< 1000 ms', verdict(fanOutMs < 1000)]);
    const connected = await stats(server);
    rows.push([`event-loop delay p99 during the fan-outs`, `${Number(connected['loopP99Ms']).toFixed(1)} ms`, '< 20 ms', verdict(Number(connected['loopP99Ms']) < 20)]);
    const rssMiB = Number(connected['rssBytes']) / 2 ** 20;
    rows.push([`server RSS with ${Number(connected['sessions'])} sessions`, `${rssMiB.toFixed(0)} MiB`, '< 300 MiB', verdict(rssMiB < 300)]);
    rows.push(['load generator RSS (all clients, one process)', `${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`, '', '']);
  } finally {
    for (const client of clients) client.close();
    await stopServer(server);
  }

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0), ['measure', 'value', 'target', ''][i]?.length ?? 0));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(`\nRendezvous server under load (Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'})\n`);
  process.stdout.write(`${line(['measure', 'value', 'target', ''])}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
