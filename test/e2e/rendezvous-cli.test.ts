/**
 * End-to-end tests of the `sala-rendezvous` program (CONTRACT.md, "sala-rendezvous"): the compiled
 * CLI runs as child processes on 127.0.0.1 with ephemeral ports, no mDNS and a temporary data dir.
 * Peers log in with the in-process RendezvousClient against the server the CLI started.
 */
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateIdentity, initCrypto, type SalaError } from '../../common/index.js';
import { RendezvousClient } from '../../peer/rendezvous/rendezvous-client.js';
import { AdminClient } from '../../rendezvous/admin/admin-client.js';
import { rejectsWithSalaError } from '../helpers/errors.js';
import {
  describeResult,
  exitOf,
  parseCsv,
  RENDEZVOUS_CLI,
  runRendezvous,
  signalChild,
  startArgs,
  startRendezvous,
  TextChild,
  withDeadline,
  type CliResult,
  untilServing,
  type CliServer,
} from '../helpers/cli.js';
import { tempDir } from '../helpers/rendezvous.js';
import type { LogRecord } from '../../rendezvous/store/store.js';

const FINGERPRINT_FORM = /^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const PASSWORD = 'first password 1';
const NEW_PASSWORD = 'second password 2';
const EVENT_WAIT_MS = 5_000;
const isPosix = process.platform !== 'win32';

/**
 * Preloaded into a server child (`node --import`): right after the listening line is written, the
 * child sends itself SIGINT, as an operator's Ctrl+C (or a supervisor) may do on seeing that line.
 */
const SIGINT_AFTER_LISTENING_HOOK = `data:text/javascript,${encodeURIComponent(
  [
    'const write = process.stdout.write.bind(process.stdout);',
    'process.stdout.write = (chunk, ...rest) => {',
    '  const result = write(chunk, ...rest);',
    `  if (String(chunk).includes('"event":"listening"')) process.kill(process.pid, 'SIGINT');`,
    '  return result;',
    '};',
  ].join('\n'),
)}`;

/** A record as `logs export --format json` prints it: the stored record without its source. */
type ExportedRecord = Omit<LogRecord, 'source'>;

interface UserView {
  name: string;
  isDisabled: boolean;
}

/** `sala-rendezvous ...args`; fails the test with the full output when the exit code is not 0. */
async function ok(args: readonly string[], stdin?: string): Promise<CliResult> {
  const result = await runRendezvous(args, stdin === undefined ? {} : { stdin });
  expect(result.code, describeResult(args, result)).toBe(0);
  return result;
}

/** `sala-rendezvous ...args`, expected to fail with `code` on stderr. */
async function fails(args: readonly string[], code: string, stdin?: string): Promise<CliResult> {
  const result = await runRendezvous(args, stdin === undefined ? {} : { stdin });
  expect(result.code, describeResult(args, result)).not.toBe(0);
  expect(result.code, describeResult(args, result)).not.toBeNull();
  expect(result.stderr).toContain(code);
  return result;
}

/**
 * The admin API of a CLI-started server, called in-process: for setup and checks in tests whose
 * subject is another command (one node start-up less per step).
 */
function adminOf(server: CliServer): AdminClient {
  return AdminClient.fromDataDir(server.dataDir, { timeoutMs: 10_000 });
}

async function addUser(server: CliServer, name: string, password = PASSWORD): Promise<void> {
  await adminOf(server).addUser(name, password);
}

async function listUsers(server: CliServer): Promise<UserView[]> {
  return adminOf(server).listUsers();
}

/** A RendezvousClient for the CLI-started server, pinned to the fingerprint it announced; closed when the test ends. */
async function clientFor(server: CliServer, user: string): Promise<RendezvousClient> {
  await initCrypto();
  const client = new RendezvousClient({
    host: '127.0.0.1',
    port: server.listening.port,
    expectedFingerprint: server.listening.fingerprint,
    user,
    identity: generateIdentity(),
    backoff: { initialDelayMs: 20, maxDelayMs: 200, jitter: 0.2 },
  });
  client.on('error', () => undefined);
  onTestFinished(() => client.close());
  return client;
}

async function loginAs(server: CliServer, user: string, password = PASSWORD): Promise<RendezvousClient> {
  const client = await clientFor(server, user);
  await client.login(password, { signal: AbortSignal.timeout(EVENT_WAIT_MS) });
  return client;
}

/** A server with alice's account and one live session of hers. */
async function serverWithAliceLoggedIn(): Promise<{ server: CliServer; alice: RendezvousClient }> {
  const server = await startRendezvous(tempDir('sala-cli-'));
  await addUser(server, 'alice');
  const alice = await loginAs(server, 'alice');
  return { server, alice };
}

/** Kicks alice (through the CLI, or in-process when the kick is only setup) and returns the error her client got. */
async function kickAlice(server: CliServer, alice: RendezvousClient, via: 'cli' | 'api'): Promise<SalaError> {
  const kicked = once(alice, 'error', { signal: AbortSignal.timeout(EVENT_WAIT_MS) }) as Promise<[SalaError]>;
  if (via === 'cli') {
    const { stdout } = await ok(['kick', 'alice', '--data', server.dataDir]);
    expect(stdout).toContain(alice.sessionId);
  } else {
    expect(await adminOf(server).kick('alice')).toHaveLength(1);
  }
  const [error] = await kicked;
  return error;
}

describe('sala-rendezvous start', () => {
  it('prints the listening event as its first stdout line in --json mode', async () => {
    const dataDir = tempDir('sala-cli-');
    const server = new TextChild(RENDEZVOUS_CLI, startArgs(dataDir));
    const stdout = await server.waitForStdout((text) => text.includes('\n'), 15_000, 'a first stdout line');
    const first = JSON.parse(stdout.slice(0, stdout.indexOf('\n'))) as Record<string, unknown>;
    expect(Object.keys(first).sort()).toEqual(['adminPort', 'event', 'fingerprint', 'host', 'port']);
    expect(first).toMatchObject({ event: 'listening', host: '127.0.0.1' });
    expect(first['port']).toEqual(expect.any(Number));
    expect(first['port']).toBeGreaterThan(0);
    expect(first['adminPort']).toEqual(expect.any(Number));
    expect(first['adminPort']).toBeGreaterThan(0);
    expect(first['adminPort']).not.toBe(first['port']);
    expect(first['fingerprint']).toMatch(FINGERPRINT_FORM);
  });

  it.runIf(isPosix)('prints nothing but JSON lines on stdout in --json mode, from start to SIGINT', async () => {
    const dataDir = tempDir('sala-cli-');
    const server = new TextChild(RENDEZVOUS_CLI, startArgs(dataDir));
    await server.waitForStdout((text) => text.includes('\n'), 15_000, 'the listening line');
    // Some activity whose logs must go to stderr, not stdout.
    const admin = AdminClient.fromDataDir(dataDir, { timeoutMs: 10_000 });
    await admin.addUser('alice', PASSWORD);
    await admin.listUsers();
    server.signal('SIGINT');
    const status = await withDeadline(server.exited, 10_000, `the server to exit\n${server.describeState()}`);
    expect(status.code, server.describeState()).toBe(0);
    const lines = server.stdout.split('\n');
    expect(lines.pop()).toBe(''); // ends with a newline
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(() => JSON.parse(line) as unknown, `stdout line ${JSON.stringify(line)}`).not.toThrow();
      expect(JSON.parse(line)).toEqual(expect.objectContaining({ event: expect.any(String) }));
    }
    expect((JSON.parse(lines[0] ?? '') as { event: string }).event).toBe('listening');
  });

  it('writes admin.token, admin-cert.pem and admin.port into the data dir, the port being the announced one', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    const { dataDir, listening } = server;
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8');
    expect(token.trim().length).toBeGreaterThan(0);
    expect(token.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(join(dataDir, 'admin-cert.pem'), 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
    expect(readFileSync(join(dataDir, 'admin.port'), 'utf8').trim()).toBe(String(listening.adminPort));
  });

  it.runIf(isPosix)('keeps the server key and the admin token owner-only (mode 0600)', async () => {
    const { dataDir } = await startRendezvous(tempDir('sala-cli-'));
    expect(statSync(join(dataDir, 'server-key.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
  });

  it('has the fingerprint command print the fingerprint the running server announced', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    const { stdout } = await ok(['fingerprint', '--data', server.dataDir]);
    expect(stdout.trim()).toBe(server.listening.fingerprint);
  });

  it('shows the fingerprint in its readable output without --json', async () => {
    const dataDir = tempDir('sala-cli-');
    const { stdout: printed } = await ok(['fingerprint', '--data', dataDir]);
    const fingerprint = printed.trim();
    expect(fingerprint).toMatch(FINGERPRINT_FORM);
    const server = new TextChild(RENDEZVOUS_CLI, startArgs(dataDir, { json: false }));
    const stdout = await server.waitForStdout((text) => text.includes(fingerprint), 15_000, `the fingerprint ${fingerprint}`);
    expect(stdout).toContain('127.0.0.1');
  });

  it.runIf(isPosix)('shuts down cleanly on SIGINT: exit code 0 and server.lock removed', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    expect(existsSync(join(server.dataDir, 'server.lock'))).toBe(true);
    await untilServing(server);
    signalChild(server.child, 'SIGINT');
    const status = await exitOf(server.child);
    expect(status, server.child.describeState()).toEqual({ code: 0, signal: null });
    expect(server.child.lines.map((line) => line['event'])).toEqual(['listening', 'stopped']);
    expect(existsSync(join(server.dataDir, 'server.lock'))).toBe(false);
  });

  // The listening line means "ready" (CONTRACT.md), so a Ctrl+C sent the moment it appears must
  // already find the handlers installed. The child sends SIGINT to itself right after writing the
  // line, which makes the window deterministic (a parent's signal hit it in ~15% of tries).
  it.runIf(isPosix)('handles a SIGINT sent as soon as the listening line is out (exit 0, lock removed)', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'), { nodeArgs: ['--import', SIGINT_AFTER_LISTENING_HOOK] });
    const status = await exitOf(server.child);
    expect(status, server.child.describeState()).toEqual({ code: 0, signal: null });
    expect(existsSync(join(server.dataDir, 'server.lock'))).toBe(false);
  });

  it.runIf(isPosix)('starts again on the same data dir after SIGINT, with the same fingerprint', async () => {
    const first = await startRendezvous(tempDir('sala-cli-'));
    await untilServing(first);
    signalChild(first.child, 'SIGINT');
    expect(await exitOf(first.child), first.child.describeState()).toEqual({ code: 0, signal: null });
    const second = await startRendezvous(first.dataDir);
    expect(second.listening.fingerprint).toBe(first.listening.fingerprint);
  });

  it('refuses a second server on the same data dir with SALA_E_SERVER_RUNNING', async () => {
    const first = await startRendezvous(tempDir('sala-cli-'));
    const result = await fails(startArgs(first.dataDir), 'SALA_E_SERVER_RUNNING');
    expect(result.stdout).toBe('');
    expect(first.child.exitStatus).toBeUndefined();
    // The first one still owns its files and answers.
    await untilServing(first);
  });

  it('takes over the stale lock left by a server killed with SIGKILL', async () => {
    const first = await startRendezvous(tempDir('sala-cli-'));
    signalChild(first.child, 'SIGKILL');
    await exitOf(first.child);
    expect(existsSync(join(first.dataDir, 'server.lock'))).toBe(true);
    const second = await startRendezvous(first.dataDir);
    expect(second.listening.fingerprint).toBe(first.listening.fingerprint);
    await untilServing(second);
  });

  it('refuses to start with an unreadable server key (SALA_E_KEY_UNREADABLE) and leaves the file as it was', async () => {
    const dataDir = tempDir('sala-cli-');
    await ok(['fingerprint', '--data', dataDir]); // makes the key and the folder
    const keyFile = join(dataDir, 'server-key.json');
    const garbage = 'this is not a key file {{{\n';
    writeFileSync(keyFile, garbage, { mode: 0o600 });
    const result = await fails(startArgs(dataDir), 'SALA_E_KEY_UNREADABLE');
    expect(result.stdout).toBe('');
    expect(readFileSync(keyFile, 'utf8')).toBe(garbage);
    expect(existsSync(join(dataDir, 'server.lock'))).toBe(false);
  });

  it('refuses --port 70000 with SALA_E_CONFIG_INVALID', async () => {
    const dataDir = tempDir('sala-cli-');
    const result = await fails(['start', '--json', '--no-mdns', '--host', '127.0.0.1', '--port', '70000', '--admin-port', '0', '--data', dataDir], 'SALA_E_CONFIG_INVALID');
    expect(result.stdout).toBe('');
  });

  it('refuses --admin-port 70000 with SALA_E_CONFIG_INVALID', async () => {
    const dataDir = tempDir('sala-cli-');
    await fails(['start', '--json', '--no-mdns', '--host', '127.0.0.1', '--port', '0', '--admin-port', '70000', '--data', dataDir], 'SALA_E_CONFIG_INVALID');
  });
});

describe('sala-rendezvous user', () => {
  it('adds an account with the password from stdin and lists it, as JSON and as a table', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    const added = await ok(['user', 'add', 'alice', '--password-stdin', '--data', server.dataDir], `${PASSWORD}\n`);
    expect(added.stdout).toContain('alice');
    const listed = await ok(['user', 'list', '--json', '--data', server.dataDir]);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'alice', isDisabled: false })]);
    const { stdout } = await ok(['user', 'list', '--data', server.dataDir]);
    expect(stdout).toMatch(/^alice\s+enabled\b/m);
    // The account works with that password.
    const alice = await loginAs(server, 'alice');
    expect(alice.user).toBe('alice');
  });

  it('refuses a duplicate account with SALA_E_USER_EXISTS', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    await addUser(server, 'alice');
    await fails(['user', 'add', 'alice', '--password-stdin', '--data', server.dataDir], 'SALA_E_USER_EXISTS', 'another password\n');
    expect(await listUsers(server)).toHaveLength(1);
  });

  it('disables an account (login refused with SALA_E_ACCOUNT_DISABLED) and enables it again', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    await addUser(server, 'alice');
    await ok(['user', 'disable', 'alice', '--data', server.dataDir]);
    expect(await listUsers(server)).toEqual([expect.objectContaining({ name: 'alice', isDisabled: true })]);
    const refused = await clientFor(server, 'alice');
    await rejectsWithSalaError(refused.login(PASSWORD, { signal: AbortSignal.timeout(EVENT_WAIT_MS) }), 'SALA_E_ACCOUNT_DISABLED');
    await ok(['user', 'enable', 'alice', '--data', server.dataDir]);
    expect(await listUsers(server)).toEqual([expect.objectContaining({ name: 'alice', isDisabled: false })]);
    const alice = await loginAs(server, 'alice');
    expect(alice.sessionId).toEqual(expect.any(String));
  });

  it('changes a password from --password-file: the new one logs in, the old one no longer does', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    await addUser(server, 'alice');
    const passwordFile = join(tempDir('sala-cli-pw-'), 'password.txt');
    writeFileSync(passwordFile, `${NEW_PASSWORD}\n`, { mode: 0o600 });
    await ok(['user', 'passwd', 'alice', '--password-file', passwordFile, '--data', server.dataDir]);
    const old = await clientFor(server, 'alice');
    await rejectsWithSalaError(old.login(PASSWORD, { signal: AbortSignal.timeout(EVENT_WAIT_MS) }), 'SALA_E_AUTH_FAILED');
    const alice = await loginAs(server, 'alice', NEW_PASSWORD);
    expect(alice.user).toBe('alice');
  });
});

describe('sala-rendezvous sessions and kick', () => {
  it('lists a live session as {sessionId, user, address, since} with --json', async () => {
    const { server, alice } = await serverWithAliceLoggedIn();
    const { stdout } = await ok(['sessions', '--json', '--data', server.dataDir]);
    const sessions = JSON.parse(stdout) as Record<string, unknown>[];
    expect(sessions).toEqual([{ sessionId: alice.sessionId, user: 'alice', address: '127.0.0.1', since: expect.stringMatching(ISO_UTC) }]);
  });

  it('kicks a user: the peer gets SALA_E_KICKED and the session is gone', async () => {
    const { server, alice } = await serverWithAliceLoggedIn();
    const error = await kickAlice(server, alice, 'cli');
    expect(error.code).toBe('SALA_E_KICKED');
    expect(await adminOf(server).listSessions()).toEqual([]);
  });

  it('kicks a session by its id', async () => {
    const { server, alice } = await serverWithAliceLoggedIn();
    const kicked = once(alice, 'error', { signal: AbortSignal.timeout(EVENT_WAIT_MS) }) as Promise<[SalaError]>;
    const { stdout } = await ok(['kick', alice.sessionId ?? 'missing', '--data', server.dataDir]);
    expect(stdout).toContain(alice.sessionId);
    expect((await kicked)[0].code).toBe('SALA_E_KICKED');
  });
});

describe('sala-rendezvous logs export', () => {
  it('prints CSV with the header row and the login and kick rows', async () => {
    const { server, alice } = await serverWithAliceLoggedIn();
    const sessionId = alice.sessionId;
    await kickAlice(server, alice, 'api');
    const { stdout } = await ok(['logs', 'export', '--format', 'csv', '--data', server.dataDir]);
    const [header, ...rows] = parseCsv(stdout);
    expect(header).toEqual(['id', 'at', 'user', 'session', 'event', 'detail']);
    for (const row of rows) expect(row).toHaveLength(6);
    const aliceRows = rows.filter((row) => row[2] === 'alice' && row[3] === sessionId);
    expect(aliceRows.map((row) => row[4])).toEqual(expect.arrayContaining(['login', 'kick']));
    for (const row of aliceRows) expect(row[1]).toMatch(ISO_UTC);
  });

  it.runIf(isPosix)('writes a JSON array for one user to an owner-only --out file, without a source field', async () => {
    const { server, alice } = await serverWithAliceLoggedIn();
    await addUser(server, 'bob');
    await kickAlice(server, alice, 'api');
    const out = join(tempDir('sala-cli-out-'), 'report.json');
    const result = await ok(['logs', 'export', '--format', 'json', '--user', 'alice', '--out', out, '--data', server.dataDir]);
    expect(result.stdout).toBe('');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const records = JSON.parse(readFileSync(out, 'utf8')) as ExportedRecord[];
    expect(Array.isArray(records)).toBe(true);
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) {
      expect(Object.keys(record).sort()).toEqual(['at', 'detail', 'event', 'id', 'session', 'user']);
      expect(record).not.toHaveProperty('source');
      expect(record.user).toBe('alice');
      expect(record.at).toMatch(ISO_UTC);
    }
    expect(records.map((record) => record.event)).toEqual(expect.arrayContaining(['login', 'kick']));
  });

  it('gives an empty JSON array for --since in the future', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    await addUser(server, 'alice');
    expect(JSON.parse(await adminOf(server).exportLogs({ format: 'json' }))).not.toEqual([]);
    const since = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
    const { stdout } = await ok(['logs', 'export', '--format', 'json', '--since', since, '--data', server.dataDir]);
    expect(JSON.parse(stdout)).toEqual([]);
  });
});

describe('sala-rendezvous admin commands without a running server', () => {
  it('fails with SALA_E_ADMIN_UNREACHABLE on a data dir no server ever used', async () => {
    const dataDir = tempDir('sala-cli-');
    await fails(['user', 'list', '--data', dataDir], 'SALA_E_ADMIN_UNREACHABLE');
    await fails(['logs', 'export', '--format', 'csv', '--data', dataDir], 'SALA_E_ADMIN_UNREACHABLE');
    await fails(['user', 'add', 'alice', '--password-stdin', '--data', dataDir], 'SALA_E_ADMIN_UNREACHABLE', `${PASSWORD}\n`);
  });

  it.runIf(isPosix)('fails with SALA_E_ADMIN_UNREACHABLE once the server of that data dir has stopped', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    await untilServing(server);
    signalChild(server.child, 'SIGINT');
    expect(await exitOf(server.child), server.child.describeState()).toEqual({ code: 0, signal: null });
    await fails(['user', 'list', '--data', server.dataDir], 'SALA_E_ADMIN_UNREACHABLE');
  });

  it('fails with SALA_E_ADMIN_UNREACHABLE when the server of that data dir was killed', async () => {
    const server = await startRendezvous(tempDir('sala-cli-'));
    signalChild(server.child, 'SIGKILL');
    await exitOf(server.child);
    await fails(['sessions', '--json', '--data', server.dataDir], 'SALA_E_ADMIN_UNREACHABLE');
  });
});
