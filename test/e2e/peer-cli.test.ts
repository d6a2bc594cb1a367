/**
 * `sala chat --json` and `sala register` as users and scripts run them: the compiled program, a
 * real server (`sala-rendezvous start`) on 127.0.0.1, JSON lines on stdin and stdout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { JsonChild, type JsonLine } from '../../common/process/json-child.js';
import { AdminClient } from '../../rendezvous/admin/admin-client.js';
import { exitOf, REPO_ROOT, runNodeScript, signalChild, startRendezvous, type CliServer } from '../helpers/cli.js';
import { tempDir } from '../helpers/rendezvous.js';
import { describeLan } from '../harness/netns.js';

const SALA_CLI = join('dist', 'peer', 'cli.js');
const PASSWORD = 'correct horse battery';
const WAIT_MS = 15_000;

async function registerUser(server: CliServer, user: string, dataDir = tempDir()): Promise<string> {
  const result = await runNodeScript(
    SALA_CLI,
    ['register', '--user', user, '--server', `127.0.0.1:${server.listening.port}`, '--data', dataDir, '--password-stdin', '--json'],
    { stdin: `${PASSWORD}\n` },
  );
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toBe(`${JSON.stringify({ event: 'registered', user })}\n`);
  return dataDir;
}

/** A server (own data dir, so its own key) on a given port: the impostor at a known address. */
async function startRendezvousOn(port: number): Promise<CliServer> {
  const dataDir = tempDir();
  const child = new JsonChild(
    process.execPath,
    [join('dist', 'rendezvous', 'cli.js'), 'start', '--json', '--no-mdns', '--host', '127.0.0.1', '--port', String(port), '--admin-port', '0', '--data', dataDir],
    { cwd: REPO_ROOT, label: 'impostor server' },
  );
  onTestFinished(async () => {
    await child.kill();
  });
  const line = await child.waitForEvent('listening', { timeoutMs: WAIT_MS });
  return { child, dataDir, listening: { event: 'listening', host: '127.0.0.1', port, adminPort: Number(line['adminPort']), fingerprint: String(line['fingerprint']) } };
}

interface ChatChild {
  child: JsonChild;
  ready: JsonLine;
}

/** `sala chat --json` on loopback (mDNS off, as the demo runs), logged in; killed when the test ends. */
async function startChat(server: CliServer, user: string, dataDir: string, options: { password?: string; extra?: string[] } = {}): Promise<ChatChild> {
  const child = new JsonChild(
    process.execPath,
    [SALA_CLI, 'chat', '--user', user, '--server', `127.0.0.1:${server.listening.port}`, '--data', dataDir, '--no-mdns', '--host', '127.0.0.1', '--password-stdin', '--json', ...(options.extra ?? [])],
    { cwd: REPO_ROOT, label: `sala chat ${user}` },
  );
  onTestFinished(async () => {
    await child.kill();
  });
  child.writeLine(options.password ?? PASSWORD);
  const ready = await child.waitForEvent('ready', { timeoutMs: WAIT_MS });
  return { child, ready };
}

function event(child: JsonChild, name: string, predicate: (line: JsonLine) => boolean = () => true): Promise<JsonLine> {
  return child.waitFor((line) => line['event'] === name && predicate(line), { timeoutMs: WAIT_MS, description: `${name} event` });
}

describe('sala chat --json', () => {
  it('prints ready, answers peers/send/history with their ref, and exits 0 on quit with nothing but JSON on stdout', async () => {
    const server = await startRendezvous(tempDir());
    const aliceDir = await registerUser(server, 'alice');
    const bobDir = await registerUser(server, 'bob');
    const alice = await startChat(server, 'alice', aliceDir);
    expect(alice.ready).toMatchObject({ event: 'ready', user: 'alice', serverFingerprint: server.listening.fingerprint, listen: { host: '127.0.0.1' } });
    expect(typeof alice.ready['sessionId']).toBe('string');
    const bob = await startChat(server, 'bob', bobDir);
    await event(alice.child, 'peer.online', (l) => l['user'] === 'bob');

    alice.child.send({ cmd: 'peers', ref: 'p1' });
    const peers = await event(alice.child, 'peers');
    expect(peers).toMatchObject({ ref: 'p1', peers: [{ user: 'bob', online: true, via: ['directory'] }] });

    alice.child.send({ cmd: 'send', to: 'bob', text: 'hello from a script', ref: 's1' });
    const sent = await event(alice.child, 'sent');
    expect(sent).toMatchObject({ to: 'bob', ref: 's1' });
    const message = await event(bob.child, 'message');
    expect(message).toMatchObject({ id: sent['id'], from: 'alice', text: 'hello from a script' });
    expect(new Date(String(message['at'])).toISOString()).toBe(message['at']);
    await event(alice.child, 'delivered', (l) => l['id'] === sent['id']);

    bob.child.send({ cmd: 'history', with: 'alice', ref: 'h1' });
    const history = await event(bob.child, 'history');
    expect(history).toMatchObject({ with: 'alice', ref: 'h1', messages: [{ id: sent['id'], from: 'alice', to: 'bob', text: 'hello from a script', status: 'received' }] });

    alice.child.send({ cmd: 'quit' });
    expect((await exitOf(alice.child)).code).toBe(0);
    await event(bob.child, 'peer.offline', (l) => l['user'] === 'alice');
    // JsonChild keeps only JSON lines: check the raw stdout had nothing else, via the line count.
    expect(alice.child.lines.every((line) => typeof line['event'] === 'string')).toBe(true);
  });

  it('answers bad commands with an error event carrying the ref, and keeps running', async () => {
    const server = await startRendezvous(tempDir());
    const dir = await registerUser(server, 'carol');
    const carol = await startChat(server, 'carol', dir);
    carol.child.writeLine('this is not json');
    expect(await event(carol.child, 'error')).toMatchObject({ code: 'SALA_E_COMMAND_INVALID' });
    carol.child.send({ cmd: 'send', to: 'dave', ref: 'r2' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'r2')).toMatchObject({ code: 'SALA_E_COMMAND_INVALID' });
    carol.child.send({ cmd: 'send', to: 'dave', text: 'x'.repeat(64 * 1024 + 1), ref: 'big' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'big')).toMatchObject({ code: 'SALA_E_MESSAGE_TOO_LARGE' });
    carol.child.send({ cmd: 'join', group: 'Class 3b!', ref: 'g' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'g')).toMatchObject({ code: 'SALA_E_INVALID_NAME' });
    carol.child.send({ cmd: 'groupSend', group: 'class-3b', text: 'anyone?', ref: 'gs' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'gs')).toMatchObject({ code: 'SALA_E_GROUP_NOT_MEMBER' });
    carol.child.send({ cmd: 'leave', group: 'class-3b', ref: 'gl' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'gl')).toMatchObject({ code: 'SALA_E_GROUP_NOT_MEMBER' });
    carol.child.send({ cmd: 'acceptFile', transferId: 'nothing-offered', ref: 'a' });
    expect(await event(carol.child, 'error', (l) => l['ref'] === 'a')).toMatchObject({ code: 'SALA_E_TRANSFER_UNKNOWN' });
    carol.child.send({ cmd: 'send', to: 'dave', text: 'for later', ref: 'q' });
    expect(await event(carol.child, 'sent', (l) => l['ref'] === 'q')).toMatchObject({ to: 'dave', status: 'queued' });
    carol.child.send({ cmd: 'peers', ref: 'still-alive' });
    expect(await event(carol.child, 'peers', (l) => l['ref'] === 'still-alive')).toMatchObject({ peers: [{ user: 'dave', online: false }] });
  });

  it('fails a wrong password with an error event SALA_E_AUTH_FAILED and a non-zero exit', async () => {
    const server = await startRendezvous(tempDir());
    const dir = await registerUser(server, 'erin');
    const result = await runNodeScript(
      SALA_CLI,
      ['--user', 'erin', '--server', `127.0.0.1:${server.listening.port}`, '--data', dir, '--no-mdns', '--host', '127.0.0.1', '--password-stdin', '--json'],
      { stdin: 'wrong password\n' },
    );
    expect(result.code).not.toBe(0);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as JsonLine);
    expect(lines).toEqual([expect.objectContaining({ event: 'error', code: 'SALA_E_AUTH_FAILED' })]);
    expect(result.stderr).toContain('SALA_E_AUTH_FAILED');
  });

  it('refuses a 4th session with SALA_E_SESSION_LIMIT listing the live sessions', async () => {
    const server = await startRendezvous(tempDir());
    await registerUser(server, 'fred');
    for (let i = 0; i < 3; i++) await startChat(server, 'fred', tempDir());
    const result = await runNodeScript(
      SALA_CLI,
      ['chat', '--user', 'fred', '--server', `127.0.0.1:${server.listening.port}`, '--data', tempDir(), '--no-mdns', '--host', '127.0.0.1', '--password-stdin', '--json'],
      { stdin: `${PASSWORD}\n` },
    );
    expect(result.code).not.toBe(0);
    const error = JSON.parse(result.stdout.trim()) as JsonLine;
    expect(error).toMatchObject({ event: 'error', code: 'SALA_E_SESSION_LIMIT' });
    expect(error['sessions']).toHaveLength(3);
  });

  it('exits non-zero with SALA_E_KICKED when the admin kicks the session', async () => {
    const server = await startRendezvous(tempDir());
    const dir = await registerUser(server, 'gina');
    const gina = await startChat(server, 'gina', dir);
    const admin = await AdminClient.fromDataDir(server.dataDir);
    await admin.kick('gina');
    expect(await event(gina.child, 'error')).toMatchObject({ code: 'SALA_E_KICKED' });
    expect((await exitOf(gina.child)).code).not.toBe(0);
  });

  it('logs out on SIGINT and on the end of stdin, freeing the session slot at once', async () => {
    const server = await startRendezvous(tempDir());
    const dir = await registerUser(server, 'hank');
    const first = await startChat(server, 'hank', dir);
    signalChild(first.child, 'SIGINT');
    expect((await exitOf(first.child)).code).toBe(0);
    const second = await startChat(server, 'hank', dir);
    await second.child.stop(10_000);
    expect(second.child.exitStatus?.code).toBe(0);
    const admin = await AdminClient.fromDataDir(server.dataDir);
    expect((await admin.listSessions()).filter((s) => s.user === 'hank')).toEqual([]);
  });

  it('refuses an unconfirmed non-loopback server in JSON mode before sending the password', async () => {
    const result = await runNodeScript(
      SALA_CLI,
      ['--user', 'ivan', '--server', '192.0.2.1:7420', '--data', tempDir(), '--no-mdns', '--host', '127.0.0.1', '--password-stdin', '--json'],
      { stdin: `${PASSWORD}\n` },
    );
    expect(result.code).not.toBe(0);
    expect(JSON.parse(result.stdout.trim())).toMatchObject({ event: 'error', code: 'SALA_E_SERVER_KEY_UNVERIFIED' });
  });

  it('refuses loudly with SALA_E_SERVER_KEY_MISMATCH when the server at a pinned address shows another key', async () => {
    const first = await startRendezvous(tempDir());
    const dir = await registerUser(first, 'kim'); // pins the first server's key for its address
    const port = first.listening.port;
    await first.child.kill();
    const impostor = await startRendezvousOn(port);
    expect(impostor.listening.fingerprint).not.toBe(first.listening.fingerprint);
    const result = await runNodeScript(
      SALA_CLI,
      ['--user', 'kim', '--server', `127.0.0.1:${port}`, '--data', dir, '--no-mdns', '--host', '127.0.0.1', '--password-stdin', '--json'],
      { stdin: `${PASSWORD}\n` },
    );
    expect(result.code).not.toBe(0);
    const error = JSON.parse(result.stdout.trim()) as JsonLine;
    expect(error).toMatchObject({ event: 'error', code: 'SALA_E_SERVER_KEY_MISMATCH' });
    expect(String(error['message'])).toContain(impostor.listening.fingerprint);
  });

  it('keeps the device key owner-only in the data dir, and the same key across runs', async () => {
    const server = await startRendezvous(tempDir());
    const dir = await registerUser(server, 'jane');
    const before = readFileSync(join(dir, 'device-key.json'), 'utf8');
    const jane = await startChat(server, 'jane', dir);
    jane.child.send({ cmd: 'quit' });
    await exitOf(jane.child);
    expect(readFileSync(join(dir, 'device-key.json'), 'utf8')).toBe(before);
  });
});

describeLan('sala chat --json groups (multicast on the test namespace\'s loopback)', () => {
  it('joins, sends and leaves a group with the contract\'s events, each message once to each other member', async () => {
    const server = await startRendezvous(tempDir());
    const dirs = await Promise.all(['alice', 'bob', 'carol'].map((user) => registerUser(server, user)));
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((user, i) => startChat(server, user, dirs[i] ?? '')));
    if (alice === undefined || bob === undefined || carol === undefined) throw new Error('unreachable');
    for (const peer of [alice, bob, carol]) {
      peer.child.send({ cmd: 'join', group: 'Class-3B', ref: 'j' });
      expect(await event(peer.child, 'group.joined')).toEqual({ event: 'group.joined', group: 'class-3b' });
    }
    alice.child.send({ cmd: 'groupSend', group: 'class-3b', text: 'hello class', ref: 'g1' });
    const sent = await event(alice.child, 'group.sent');
    expect(sent).toEqual({ event: 'group.sent', id: expect.any(String), group: 'class-3b', ref: 'g1' });
    for (const peer of [bob, carol]) {
      const message = await event(peer.child, 'group.message');
      expect(message).toEqual({ event: 'group.message', id: sent['id'], group: 'class-3b', from: 'alice', text: 'hello class', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
    }
    carol.child.send({ cmd: 'leave', group: 'class-3b' });
    expect(await event(carol.child, 'group.left')).toEqual({ event: 'group.left', group: 'class-3b' });
    bob.child.send({ cmd: 'groupSend', group: 'class-3b', text: 'carol is gone' });
    expect(await event(alice.child, 'group.message')).toMatchObject({ from: 'bob', text: 'carol is gone' });
    carol.child.send({ cmd: 'peers', ref: 'after' });
    await event(carol.child, 'peers', (l) => l['ref'] === 'after');
    expect(carol.child.lines.filter((l) => l['event'] === 'group.message')).toHaveLength(1);
    expect(alice.child.lines.filter((l) => l['event'] === 'group.message')).toHaveLength(1);
  });

  it('runs /join, /g and plain lines to the group in interactive mode, and prints group messages above the prompt', async () => {
    const server = await startRendezvous(tempDir());
    const aliceDir = await registerUser(server, 'alice');
    const bobDir = await registerUser(server, 'bob');
    const bob = await startChat(server, 'bob', bobDir);
    bob.child.send({ cmd: 'join', group: 'class' });
    await event(bob.child, 'group.joined');
    // Interactive mode on a pipe (no TTY): lines in, plain text out.
    const alice = spawn(process.execPath, [SALA_CLI, 'chat', '--user', 'alice', '--server', `127.0.0.1:${server.listening.port}`, '--data', aliceDir, '--no-mdns', '--host', '127.0.0.1', '--password-stdin'], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => alice.once('exit', (exitCode) => resolve(exitCode)));
    onTestFinished(() => void alice.kill('SIGKILL'));
    let output = '';
    alice.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    alice.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const printed = async (text: string): Promise<void> => {
      const deadline = Date.now() + WAIT_MS;
      while (!output.includes(text)) {
        if (Date.now() > deadline) throw new Error(`alice never printed ${JSON.stringify(text)}; she printed:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    alice.stdin.write(`${PASSWORD}\n/join class\n`);
    await printed('you joined #class');
    alice.stdin.write('/g class hello from alice\nand a plain line\n');
    expect(await event(bob.child, 'group.message')).toMatchObject({ from: 'alice', text: 'hello from alice' });
    expect(await event(bob.child, 'group.message')).toMatchObject({ from: 'alice', text: 'and a plain line' });
    bob.child.send({ cmd: 'groupSend', group: 'class', text: 'hi alice \u001b[31mred' });
    await printed('#class bob: hi alice ');
    expect(output).not.toContain('\u001b[31m'); // a peer's text cannot paint on the terminal
    alice.stdin.write('/leave class\n/quit\n');
    await printed('you left #class');
    expect(await exited).toBe(0);
  });
});
