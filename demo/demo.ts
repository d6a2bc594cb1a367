import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  generateIdentity,
  initCrypto,
  JsonChild,
  SalaError,
  type DirectoryEntry,
} from '../common/index.js';
import { RendezvousClient } from '../peer/rendezvous/rendezvous-client.js';

/**
 * `npm run demo`: what Sala can do so far, on one machine, with nothing but loopback traffic. It
 * runs the real programs — `sala-rendezvous start`, `sala register`, the admin commands — as child
 * processes, and three logged-in peers in this process through the peer library.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const serverCli = join(root, 'dist', 'rendezvous', 'cli.js');
const peerCli = join(root, 'dist', 'peer', 'cli.js');
const PASSWORDS: Readonly<Record<string, string>> = { alice: 'alice-demo-pass', bob: 'bob-demo-pass', carol: 'carol-demo-pass' };

const out = (text = ''): void => void process.stdout.write(`${text}\n`);
let stepNumber = 0;
const STEPS = 7;
const step = (text: string): void => out(`\n[${++stepNumber}/${STEPS}] ${text}`);

/** Runs one CLI command to completion, feeding `input` on stdin. */
function run(script: string, args: readonly string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = execFile(process.execPath, [script, ...args], { cwd: root, windowsHide: true }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

async function startServer(dataDir: string, port: number): Promise<{ child: JsonChild; port: number; fingerprint: string }> {
  const child = new JsonChild(
    process.execPath,
    [serverCli, 'start', '--json', '--host', '127.0.0.1', '--port', String(port), '--admin-port', '0', '--no-mdns', '--data', dataDir],
    { label: 'sala-rendezvous', cwd: root },
  );
  const line = await child.waitForEvent('listening', { timeoutMs: 20_000 });
  return { child, port: Number(line['port']), fingerprint: String(line['fingerprint']) };
}

function describeDirectory(entries: readonly DirectoryEntry[]): string {
  const users = [...new Set(entries.map((e) => e.user))].sort();
  return users.join(', ');
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'sala-demo-'));
  const serverDir = join(workDir, 'server');
  const clients: RendezvousClient[] = [];
  let server: { child: JsonChild; port: number; fingerprint: string } | undefined;
  const cleanup = async (): Promise<void> => {
    for (const client of clients) client.close();
    await server?.child.kill();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    out('\nInterrupted; stopping the demo processes.');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    await initCrypto();
    out('Sala demo: a rendezvous server and three users, everything on 127.0.0.1.');
    out(`Temporary data folder: ${workDir}`);

    step('The teacher starts the rendezvous server (sala-rendezvous start).');
    server = await startServer(serverDir, 0);
    out(`      listening on 127.0.0.1:${server.port}`);
    out(`      server key fingerprint: ${server.fingerprint}   ← shown to the class; each first login checks it`);
    const serverArg = `127.0.0.1:${server.port}`;

    step('Three students create their accounts (sala register); passwords are hashed with argon2id.');
    for (const user of Object.keys(PASSWORDS)) {
      const result = await run(peerCli, [
        'register', '--user', user, '--server', serverArg, '--server-key', server.fingerprint,
        '--data', join(workDir, user), '--password-stdin', '--json',
      ], `${PASSWORDS[user]}\n`);
      if (result.code !== 0) throw new Error(`sala register ${user} failed: ${result.stdout}${result.stderr}`);
      out(`      ${result.stdout.trim()}`);
    }
    const duplicate = await run(peerCli, [
      'register', '--user', 'Alice', '--server', serverArg, '--server-key', server.fingerprint,
      '--data', join(workDir, 'mallory'), '--password-stdin', '--json',
    ], 'another-password\n');
    out(`      "Alice" again: ${JSON.parse(duplicate.stdout.trim()).code as string} (names are case-folded)`);

    step('They log in. The password goes only to the server that proved the confirmed key.');
    const login = async (user: string): Promise<{ client: RendezvousClient; directory: DirectoryEntry[] }> => {
      const client = new RendezvousClient({
        host: '127.0.0.1',
        port: server!.port,
        user,
        identity: generateIdentity(),
        expectedFingerprint: server!.fingerprint,
      });
      client.on('error', (err) => out(`      ${user}: the server ended this session (${err.code})`));
      clients.push(client);
      const welcome = await client.login(PASSWORDS[user] ?? '');
      return { client, directory: welcome.directory };
    };
    const alice = (await login('alice')).client;
    const bob = (await login('bob')).client;
    const carol = await login('carol');
    for (const client of [alice, bob, carol.client]) {
      out(`      ${client.user} logged in: session ${client.sessionId}, ticket signed by ${client.serverFingerprint}`);
    }
    out(`      the directory carol received lists: ${describeDirectory(carol.directory)} (then pushed as people come and go)`);

    step('Alice logs in on two more devices; a 4th simultaneous session is refused.');
    await login('alice');
    await login('alice');
    try {
      await login('alice');
      throw new Error('the 4th session was accepted');
    } catch (err) {
      if (!(err instanceof SalaError) || err.code !== 'SALA_E_SESSION_LIMIT') throw err;
      out(`      4th login: ${err.code}, naming the live sessions:`);
      for (const s of err.details.sessions ?? []) out(`        ${s.sessionId} from ${s.address} since ${s.since}`);
    }

    step('The server restarts; the peers reconnect by themselves and resume their sessions.');
    const bobSession = bob.sessionId;
    const disconnected = once(bob, 'server.disconnected', { signal: AbortSignal.timeout(10_000) });
    await server.child.kill();
    await disconnected;
    out('      server stopped: bob notices (server.disconnected) and retries with backoff and jitter');
    server = await startServer(serverDir, server.port);
    await once(bob, 'server.reconnected', { signal: AbortSignal.timeout(20_000) });
    out(`      server back: bob resumed session ${bob.sessionId} (${bob.sessionId === bobSession ? 'the same one' : 'a new one'}), no password asked`);

    step('The teacher checks who is connected (sala-rendezvous sessions) and ends one (kick).');
    const sessions = await run(serverCli, ['sessions', '--data', serverDir]);
    for (const line of sessions.stdout.trim().split('\n')) out(`      ${line}`);
    const kicked = once(alice, 'error', { signal: AbortSignal.timeout(10_000) });
    const kick = await run(serverCli, ['kick', alice.sessionId ?? '', '--data', serverDir]);
    if (kick.code !== 0) throw new Error(`kick failed: ${kick.stderr}`);
    await kicked;

    step('The activity report (sala-rendezvous logs export): metadata only, never texts or passwords.');
    const report = await run(serverCli, ['logs', 'export', '--format', 'csv', '--data', serverDir]);
    const [header, ...rows] = report.stdout.trim().split(/\r?\n/);
    out(`      ${header ?? ''}`);
    if (rows.length > 12) out(`      … ${rows.length - 12} earlier rows`);
    for (const row of rows.slice(-12)) out(`      ${row}`);

    out('\nSummary');
    out('  ✔ a rendezvous server whose key every login checks before sending a password');
    out('  ✔ three accounts registered; a duplicate name refused');
    out('  ✔ logins with signed session tickets and a pushed directory');
    out('  ✔ a 4th simultaneous session refused, naming the three live ones');
    out('  ✔ a server restart survived: sessions resumed without passwords');
    out('  ✔ the admin listed sessions, kicked one, and exported the activity report');
    out('Next: direct peer links for 1:1 chat, file transfer, and group chat over multicast.');
    for (const client of clients) await client.logout();
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`\nThe demo failed: ${err instanceof SalaError ? `${err.code}: ${err.message}` : String(err)}\n`);
  process.exit(1);
});
