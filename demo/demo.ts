import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonChild, SalaError, type JsonLine } from '../common/index.js';

/**
 * `npm run demo`: what Sala does, on one machine, with nothing but loopback traffic. It runs the real
 * programs as child processes — `sala-rendezvous start`, `sala register`, three `sala chat --json`
 * peers (mDNS off and group multicast pinned to 127.0.0.1: nothing leaves this computer), the admin
 * commands — and explains each step.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const serverCli = join(root, 'dist', 'rendezvous', 'cli.js');
const peerCli = join(root, 'dist', 'peer', 'cli.js');
const PASSWORDS: Readonly<Record<string, string>> = { alice: 'alice-demo-pass', bob: 'bob-demo-pass', carol: 'carol-demo-pass' };
const WAIT = { timeoutMs: 20_000 } as const;

const out = (text = ''): void => void process.stdout.write(`${text}\n`);
let stepNumber = 0;
const STEPS = 11;
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
  const line = await child.waitForEvent('listening', WAIT);
  return { child, port: Number(line['port']), fingerprint: String(line['fingerprint']) };
}

/** One `sala chat --json` program: a student's laptop, its own data folder. */
class DemoPeer {
  readonly child: JsonChild;
  readonly user: string;
  sessionId = '';

  constructor(user: string, dataDir: string, serverPort: number) {
    this.user = user;
    this.child = new JsonChild(
      process.execPath,
      [
        peerCli, 'chat', '--user', user, '--server', `127.0.0.1:${serverPort}`, '--data', dataDir,
        '--downloads', join(dataDir, 'Downloads'), '--host', '127.0.0.1', '--interface', '127.0.0.1', '--no-mdns', '--password-stdin', '--json',
      ],
      { label: `sala chat ${user}`, cwd: root },
    );
  }

  async login(password: string): Promise<JsonLine> {
    this.child.writeLine(password);
    const ready = await this.child.waitForEvent('ready', WAIT);
    this.sessionId = String(ready['sessionId']);
    return ready;
  }

  command(command: Record<string, unknown>): void {
    this.child.send(command);
  }

  next(event: string, predicate: (line: JsonLine) => boolean = () => true): Promise<JsonLine> {
    return this.child.waitFor((line) => line['event'] === event && predicate(line), { ...WAIT, description: `${this.user}: ${event}` });
  }

  /** Sends a message and waits until the other side's program has stored it (`delivered`). */
  async say(to: DemoPeer, text: string): Promise<void> {
    const ref = `${this.user}-${Date.now()}`;
    this.command({ cmd: 'send', to: to.user, text, ref });
    const sent = await this.next('sent', (l) => l['ref'] === ref);
    const received = await to.next('message', (l) => l['id'] === sent['id']);
    await this.next('delivered', (l) => l['id'] === sent['id']);
    out(`      ${this.user} → ${to.user}: "${String(received['text'])}"   (id ${String(sent['id']).slice(0, 8)}…, sent ✓ delivered ✓)`);
  }

  async quit(): Promise<void> {
    this.command({ cmd: 'quit' });
    const status = await this.child.exited;
    if (status.code !== 0) throw new Error(`${this.user} quit with code ${String(status.code)}: ${this.child.stderr}`);
  }
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'sala-demo-'));
  const serverDir = join(workDir, 'server');
  const peers: DemoPeer[] = [];
  let server: { child: JsonChild; port: number; fingerprint: string } | undefined;
  const cleanup = async (): Promise<void> => {
    await Promise.all(peers.map((peer) => peer.child.kill()));
    await server?.child.kill();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    out('\nInterrupted; stopping the demo processes.');
    void cleanup().finally(() => process.exit(130));
  });
  const startPeer = async (user: string, dataDir = join(workDir, user)): Promise<DemoPeer> => {
    const peer = new DemoPeer(user, dataDir, server?.port ?? 0);
    peers.push(peer);
    await peer.login(PASSWORDS[user] ?? '');
    return peer;
  };

  try {
    out('Sala demo: a rendezvous server and three students, everything on 127.0.0.1.');
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

    step('They start Sala (sala chat --json). Each logs in, listens for direct links, and sees the others.');
    const alice = await startPeer('alice');
    const bob = await startPeer('bob');
    const carol = await startPeer('carol');
    for (const peer of [alice, bob, carol]) out(`      ${peer.user} is ready: session ${peer.sessionId}`);
    await alice.next('peer.online', (l) => l['user'] === 'carol');
    alice.command({ cmd: 'peers', ref: 'who' });
    const list = await alice.next('peers', (l) => l['ref'] === 'who');
    for (const p of list['peers'] as { user: string; online: boolean; addresses: string[]; via: string[] }[]) {
      out(`      alice sees ${p.user}: ${p.online ? 'online' : 'offline'} at ${p.addresses.join(', ')} (via ${p.via.join(' + ')})`);
    }

    step('1:1 chat over direct encrypted links: each side proves its session ticket in the handshake.');
    await alice.say(bob, 'Hi Bob, did you finish exercise 3?');
    await bob.say(alice, 'Almost! The last part is tricky.');
    await carol.say(alice, 'Alice, can you share your notes later?');
    out('      the server only introduced them: the texts went peer to peer, never through it');

    step('Alice sends Bob a file: offered, accepted, streamed over the link, checked with SHA-256.');
    const document = join(workDir, 'lesson-7-slides.pdf');
    const documentBytes = randomBytes(6 * 1024 * 1024 + 12_345);
    writeFileSync(document, documentBytes);
    const documentHash = createHash('sha256').update(documentBytes).digest('hex');
    alice.command({ cmd: 'sendFile', to: 'bob', path: document, ref: 'slides' });
    const offered = await alice.next('file.offered', (l) => l['ref'] === 'slides');
    const offer = await bob.next('file.offer', (l) => l['transferId'] === offered['transferId']);
    out(`      bob is offered ${String(offer['name'])} (${String(offer['size'])} bytes) by ${String(offer['from'])}; he accepts`);
    bob.command({ cmd: 'acceptFile', transferId: offer['transferId'] });
    const [received, fileSent] = await Promise.all([
      bob.next('file.received', (l) => l['transferId'] === offered['transferId']),
      alice.next('file.sent', (l) => l['transferId'] === offered['transferId']),
    ]);
    const progressEvents = bob.child.lines.filter((l) => l['event'] === 'file.progress' && l['transferId'] === offered['transferId']).length;
    out(`      ${progressEvents} progress events; bob stored it as ${String(received['path'])}`);
    const stored = createHash('sha256').update(readFileSync(String(received['path']))).digest('hex');
    if (stored !== documentHash || received['sha256'] !== documentHash || fileSent['sha256'] !== documentHash) throw new Error('the file arrived altered');
    out(`      SHA-256 ${documentHash.slice(0, 32)}… — the same on alice's disk, in both programs' reports, and on bob's disk`);

    step('Group chat: all three join "class-7b"; each message is sealed with the group key, signed, and multicast once.');
    for (const peer of [alice, bob, carol]) {
      peer.command({ cmd: 'join', group: 'class-7b' });
      await peer.next('group.joined');
    }
    const noMulticast = [alice, bob, carol].filter((peer) =>
      peer.child.lines.some((l) => l['event'] === 'warning' && l['code'] === 'SALA_E_GROUP_MULTICAST_UNAVAILABLE'),
    );
    out(
      noMulticast.length === 0
        ? '      the server handed each member the group key; multicast works on 127.0.0.1 here, so one datagram reaches everyone'
        : `      multicast on 127.0.0.1 does not work on this computer (${noMulticast.map((p) => p.user).join(', ')} said so): the group goes over the direct links instead`,
    );
    for (const [from, text] of [
      [bob, 'Who wants to review chapter 4 together?'],
      [carol, 'Me! Library at 4?'],
      [alice, 'Count me in.'],
    ] as const) {
      from.command({ cmd: 'groupSend', group: 'class-7b', text, ref: `g-${from.user}` });
      const sent = await from.next('group.sent', (l) => l['ref'] === `g-${from.user}`);
      const others = [alice, bob, carol].filter((peer) => peer !== from);
      await Promise.all(others.map((peer) => peer.next('group.message', (l) => l['id'] === sent['id'])));
      out(`      #class-7b ${from.user}: "${text}"   (reached ${others.map((p) => p.user).join(' and ')} once)`);
    }
    bob.command({ cmd: 'leave', group: 'class-7b' });
    await bob.next('group.left');
    out('      bob leaves: the server gives alice and carol a new key, so bob cannot read what follows');

    step('Carol closes Sala. Alice writes to her anyway: the message waits in Alice\'s outbox.');
    await carol.quit();
    await alice.next('peer.offline', (l) => l['user'] === 'carol');
    out('      alice sees: carol went offline');
    alice.command({ cmd: 'send', to: 'carol', text: 'Here are the notes: chapter 4, pages 12-15.', ref: 'notes' });
    const queued = await alice.next('sent', (l) => l['ref'] === 'notes');
    out(`      alice → carol: status "${String(queued['status'])}" (stored; it goes when carol is back)`);
    const carolAgain = await startPeer('carol');
    const late = await carolAgain.next('message', (l) => l['id'] === queued['id']);
    await alice.next('delivered', (l) => l['id'] === queued['id']);
    out(`      carol is back and receives it once: "${String(late['text'])}"; alice gets "delivered"`);

    step('The server restarts. Links between peers keep working; sessions resume without passwords.');
    const bobSession = bob.sessionId;
    const down = [alice, bob].map((peer) => peer.next('server.disconnected'));
    await server.child.kill();
    await Promise.all(down);
    out('      server stopped: alice and bob notice (server.disconnected) and retry with backoff and jitter');
    await alice.say(bob, 'The server is down, but we can still talk!');
    const up = [alice, bob].map((peer) => peer.next('server.reconnected'));
    server = await startServer(serverDir, server.port);
    await Promise.all(up);
    const sessionsNow = await run(serverCli, ['sessions', '--json', '--data', serverDir]);
    const resumed = (JSON.parse(sessionsNow.stdout) as { sessionId: string }[]).some((s) => s.sessionId === bobSession);
    out(`      server back: bob reconnected (server.reconnected) and ${resumed ? 'resumed the same session' : 'has a new session'} ${bobSession}`);
    await bob.say(alice, 'And the server is back.');

    step('Alice logs in on two more laptops; a 4th simultaneous session is refused.');
    await startPeer('alice', join(workDir, 'alice-laptop-2'));
    await startPeer('alice', join(workDir, 'alice-laptop-3'));
    const fourth = await run(peerCli, [
      'chat', '--user', 'alice', '--server', `127.0.0.1:${server.port}`, '--data', join(workDir, 'alice-laptop-4'),
      '--host', '127.0.0.1', '--no-mdns', '--password-stdin', '--json',
    ], `${PASSWORDS['alice'] ?? ''}\n`);
    const refusal = JSON.parse(fourth.stdout.trim().split('\n')[0] ?? '{}') as { code?: string; sessions?: { sessionId: string; address: string; since: string }[] };
    if (refusal.code !== 'SALA_E_SESSION_LIMIT') throw new Error(`the 4th session was not refused: ${fourth.stdout}`);
    out(`      4th login: ${refusal.code} (exit code ${fourth.code}), naming the live sessions:`);
    for (const s of refusal.sessions ?? []) out(`        ${s.sessionId} from ${s.address} since ${s.since}`);

    step('The teacher checks who is connected (sala-rendezvous sessions) and ends one (kick).');
    const sessions = await run(serverCli, ['sessions', '--data', serverDir]);
    for (const line of sessions.stdout.trim().split('\n')) out(`      ${line}`);
    const extra = peers.at(-1);
    if (extra === undefined) throw new Error('no extra session to kick');
    const kicked = extra.next('error');
    const kick = await run(serverCli, ['kick', extra.sessionId, '--data', serverDir]);
    if (kick.code !== 0) throw new Error(`kick failed: ${kick.stderr}`);
    out(`      kicked session ${extra.sessionId}: that program got ${String((await kicked)['code'])} and exited with code ${String((await extra.child.exited).code)}`);

    step('Everyone quits; the activity report (sala-rendezvous logs export) shows metadata, never texts.');
    for (const peer of peers) if (peer.child.exitStatus === undefined) await peer.quit();
    const report = await run(serverCli, ['logs', 'export', '--format', 'csv', '--data', serverDir]);
    const [header, ...rows] = report.stdout.trim().split(/\r?\n/);
    const chatRows = rows.filter((row) => /,(link\.up|message\.sent|message\.received|group\.sent),/.test(row));
    out(`      ${rows.length} records; ${chatRows.length} of them about links and messages, for example:`);
    out(`      ${header ?? ''}`);
    for (const row of chatRows.slice(0, 6)) out(`      ${row}`);
    if (report.stdout.includes('exercise 3') || report.stdout.includes('chapter 4 together')) throw new Error('a message text reached the server log');

    out('\nSummary');
    out('  ✔ a rendezvous server whose key every login checks before sending a password');
    out('  ✔ three accounts registered; a duplicate name refused');
    out('  ✔ three peers logged in, saw each other, and chatted 1:1 over direct encrypted links');
    out('  ✔ a file offered, accepted, streamed and verified with SHA-256 on both ends');
    out(noMulticast.length === 0 ? '  ✔ a group of three chatted over multicast on 127.0.0.1, sealed and signed' : '  ✔ a group of three chatted, over direct links because multicast on 127.0.0.1 is not available here');
    out('  ✔ a message to an offline user waited in the outbox and was delivered once when she came back');
    out('  ✔ a server restart: chat went on over the links, sessions resumed without passwords');
    out('  ✔ a 4th simultaneous session refused, naming the three live ones');
    out('  ✔ the admin listed sessions, kicked one, and exported the activity report (no message texts)');
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`\nThe demo failed: ${err instanceof SalaError ? `${err.code}: ${err.message}` : String(err)}\n`);
  process.exit(1);
});
