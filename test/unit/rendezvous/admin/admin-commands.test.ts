/**
 * The admin commands, run in-process: a commander program with addAdminCommands, exitOverride and
 * captured output, against a real admin API (fake backend, see helpers.ts) in a temporary data dir.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import { addAdminCommands } from '../../../../rendezvous/admin/admin-commands.js';
import { sampleLog, sampleSession, startTestApi, tempDataDir } from './helpers.js';

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs `sala-rendezvous <args>` in-process; `stdinText` is what the command finds on stdin. */
async function run(args: readonly string[], stdinText = ''): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end(stdinText);
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const program = new Command('sala-rendezvous').exitOverride().configureOutput({
    writeOut: (text) => (out += text),
    writeErr: (text) => (err += text),
  });
  addAdminCommands(program, { stdout, stderr, stdin });
  await program.parseAsync([...args], { from: 'user' });
  return { stdout: out, stderr: err };
}

async function failure(args: readonly string[], stdinText = ''): Promise<SalaError> {
  const err = await run(args, stdinText).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SalaError);
  return err as SalaError;
}

describe('admin commands: accounts', () => {
  it('user add takes the password from the first line of stdin', async () => {
    const running = await startTestApi();
    const result = await run(['user', 'add', 'bob', '--password-stdin', '--data', running.dataDir], 'stdin-secret\nignored\n');
    expect(result.stdout).toBe('Account "bob" created.\n');
    expect(running.backend.users.get('bob')?.password).toBe('stdin-secret');
  });

  it('user add takes the password from --password-file', async () => {
    const running = await startTestApi();
    const file = join(running.dataDir, 'pw.txt');
    writeFileSync(file, 'file-secret\n');
    await run(['user', 'add', 'bob', '--password-file', file, '--data', running.dataDir]);
    expect(running.backend.users.get('bob')?.password).toBe('file-secret');
  });

  it('user add without a terminal or a password flag fails with SALA_E_CONFIG_INVALID', async () => {
    const running = await startTestApi();
    const err = await failure(['user', 'add', 'bob', '--data', running.dataDir]);
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
    expect(running.backend.users.size).toBe(0);
  });

  it("user add reports the server's SALA_E_USER_EXISTS", async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    expect((await failure(['user', 'add', 'bob', '--password-stdin', '--data', running.dataDir], 'password2\n')).code).toBe('SALA_E_USER_EXISTS');
  });

  it('user list --json prints one JSON array', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const result = await run(['user', 'list', '--json', '--data', running.dataDir]);
    expect(JSON.parse(result.stdout)).toEqual([
      { name: 'bob', isDisabled: false, createdAt: '2025-01-02T03:04:05.000Z', passwordChangedAt: '2025-01-02T03:04:05.000Z' },
    ]);
  });

  it('user list prints an aligned table', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    await running.backend.addUser('christine', 'password1');
    await running.backend.setUserDisabled('bob', true);
    const lines = (await run(['user', 'list', '--data', running.dataDir])).stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+CREATED\s+PASSWORD CHANGED$/);
    expect(lines[1]).toMatch(/^bob {8}disabled {2}2025-01-02T03:04:05\.000Z/);
    expect(lines[2]).toMatch(/^christine {2}enabled {3}2025/);
  });

  it('user disable and user enable switch the account', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    expect((await run(['user', 'disable', 'bob', '--data', running.dataDir])).stdout).toBe('Account "bob" disabled.\n');
    expect(running.backend.users.get('bob')?.isDisabled).toBe(true);
    expect((await run(['user', 'enable', 'bob', '--data', running.dataDir])).stdout).toBe('Account "bob" enabled.\n');
    expect(running.backend.users.get('bob')?.isDisabled).toBe(false);
  });

  it('user passwd sets the password from stdin', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    await run(['user', 'passwd', 'bob', '--password-stdin', '--data', running.dataDir], 'password2\n');
    expect(running.backend.users.get('bob')?.password).toBe('password2');
  });

  it('user disable of an unknown account fails with SALA_E_USER_UNKNOWN', async () => {
    const running = await startTestApi();
    const err = await failure(['user', 'disable', 'ghost', '--data', running.dataDir]);
    expect(err.code).toBe('SALA_E_USER_UNKNOWN');
    expect(err.message).toContain('ghost');
  });
});

describe('admin commands: sessions and kick', () => {
  it('sessions --json prints {sessionId, user, address, since} objects only', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession({ isConnected: false })];
    const result = await run(['sessions', '--json', '--data', running.dataDir]);
    expect(JSON.parse(result.stdout)).toEqual([{ sessionId: 's-1', user: 'alice', address: '192.168.1.20', since: '2025-01-02T03:04:05.000Z' }]);
  });

  it('sessions prints a table with a state column', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession(), sampleSession({ sessionId: 's-22', user: 'bob', isConnected: false })];
    const lines = (await run(['sessions', '--data', running.dataDir])).stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SESSION\s+USER\s+ADDRESS\s+SINCE\s+STATE$/);
    expect(lines[1]).toMatch(/^s-1 {6}alice {2}192\.168\.1\.20 {2}2025-01-02T03:04:05\.000Z {2}connected$/);
    expect(lines[2]).toMatch(/reconnecting$/);
  });

  it('kick ends the sessions of a user and says which', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession()];
    const result = await run(['kick', 'alice', '--data', running.dataDir]);
    expect(result.stdout).toBe('Ended session s-1 of alice (192.168.1.20).\n');
    expect(running.backend.sessions).toEqual([]);
  });

  it('kick of nothing fails with SALA_E_SESSION_UNKNOWN', async () => {
    const running = await startTestApi();
    expect((await failure(['kick', 'nobody', '--data', running.dataDir])).code).toBe('SALA_E_SESSION_UNKNOWN');
  });
});

describe('admin commands: logs export', () => {
  it('prints CSV on stdout without --out', async () => {
    const running = await startTestApi();
    running.backend.logs = [sampleLog({ detail: '@SUM(A1)' })];
    const result = await run(['logs', 'export', '--format', 'csv', '--data', running.dataDir]);
    expect(result.stdout.split('\r\n')[0]).toBe('id,at,user,session,event,detail');
    expect(result.stdout).toContain("'@SUM(A1)");
  });

  it('passes --user, --since and --until on', async () => {
    const running = await startTestApi();
    await run(['logs', 'export', '--format', 'json', '--user', 'Alice', '--since', '2025-01-01', '--until', '2025-02-01', '--data', running.dataDir]);
    expect(running.backend.logQueries).toEqual([{ user: 'alice', since: '2025-01-01T00:00:00.000Z', until: '2025-02-01T00:00:00.000Z' }]);
  });

  it('writes an owner-only file with --out and says where on stderr', async () => {
    const running = await startTestApi();
    running.backend.logs = [sampleLog()];
    const out = join(tempDataDir('sala-export-'), 'report.json');
    const result = await run(['logs', 'export', '--format', 'json', '--out', out, '--data', running.dataDir]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(out);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toHaveLength(1);
    if (process.platform !== 'win32') expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it('refuses a bad --since before looking for the server', async () => {
    const dataDir = tempDataDir();
    const err = await failure(['logs', 'export', '--format', 'json', '--since', 'last week', '--data', dataDir]);
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
  });
});

describe('admin commands: finding the server', () => {
  it('fails with SALA_E_ADMIN_UNREACHABLE when no server runs for the data dir', async () => {
    const dataDir = tempDataDir();
    const err = await failure(['sessions', '--data', dataDir]);
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
    expect(err.message).toContain(`sala-rendezvous start --data ${dataDir}`);
  });

  it('finds the server through SALA_HOME when --data is absent', async () => {
    const running = await startTestApi();
    const saved = process.env['SALA_HOME'];
    process.env['SALA_HOME'] = running.dataDir;
    onTestFinished(() => {
      if (saved === undefined) delete process.env['SALA_HOME'];
      else process.env['SALA_HOME'] = saved;
    });
    expect((await run(['sessions', '--json'])).stdout).toBe('[]\n');
  });

  it('adds exactly the commands of the contract', () => {
    const program = new Command('sala-rendezvous');
    addAdminCommands(program);
    const names = (command: Command): string[] => command.commands.map((c) => c.name());
    expect(names(program)).toEqual(['user', 'sessions', 'kick', 'logs']);
    expect(names(program.commands[0] as Command)).toEqual(['add', 'list', 'disable', 'enable', 'passwd']);
    expect(names(program.commands[3] as Command)).toEqual(['export']);
  });
});
