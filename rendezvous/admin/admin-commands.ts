import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { readPassword } from '../../common/cli/password-input.js';
import { resolveDataDir, SalaError } from '../../common/index.js';
import { parseLogQuery } from '../logs/index.js';
import { AdminClient } from './admin-client.js';
import type { AdminSessionView, AdminUserView } from './backend.js';

/**
 * The admin commands of `sala-rendezvous` (CONTRACT.md): user add/list/disable/enable/passwd,
 * sessions, kick and logs export. Each is a thin shell: parse the arguments, find the running
 * server through its data dir (AdminClient), call one admin API route, print. Results go to
 * stdout; notes for a person (where a file was written) go to stderr.
 */
export interface AdminCommandIo {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable & { isTTY?: boolean };
}

const DATA_HELP = 'data directory of the running server (else SALA_HOME, else the per-OS data directory)';

interface DataOption {
  data?: string;
}
interface PasswordOptions extends DataOption {
  passwordStdin?: boolean;
  passwordFile?: string;
}
interface JsonOption extends DataOption {
  json?: boolean;
}
interface ExportOptions extends DataOption {
  format: string;
  user?: string;
  since?: string;
  until?: string;
  out?: string;
}

export function addAdminCommands(program: Command, io: AdminCommandIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): void {
  const clientFor = (options: DataOption): AdminClient => AdminClient.fromDataDir(resolveDataDir('rendezvous', { flag: options.data }));
  const print = (text: string): void => {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const newPassword = async (name: string, options: PasswordOptions): Promise<string> => {
    const password = await readPassword({
      passwordStdin: options.passwordStdin,
      passwordFile: options.passwordFile,
      prompt: `New password for ${name}`,
      confirm: true,
      stdin: io.stdin,
      stderr: io.stderr,
    });
    // Nothing else here reads stdin; an open pipe must not keep the command alive.
    if (options.passwordStdin === true) io.stdin.pause();
    return password;
  };

  const user = program.command('user').description('manage accounts on the running server');

  user
    .command('add')
    .description('create an account (password from a prompt, --password-stdin or --password-file)')
    .argument('<name>', 'user name: 2–32 characters of a-z, 0-9, _ and -')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--password-file <file>', 'read the password from the first line of FILE')
    .option('--data <dir>', DATA_HELP)
    .action(async (name: string, options: PasswordOptions) => {
      const client = clientFor(options);
      const created = await client.addUser(name, await newPassword(name, options));
      print(`Account "${created.name}" created.`);
    });

  user
    .command('list')
    .description('list the accounts')
    .option('--json', 'print one JSON array')
    .option('--data <dir>', DATA_HELP)
    .action(async (options: JsonOption) => {
      const users = await clientFor(options).listUsers();
      print(options.json === true ? JSON.stringify(users) : formatUsers(users));
    });

  user
    .command('disable')
    .description('disable an account (its sessions end; it cannot log in until enabled)')
    .argument('<name>', 'user name')
    .option('--data <dir>', DATA_HELP)
    .action(async (name: string, options: DataOption) => {
      const changed = await clientFor(options).disableUser(name);
      print(`Account "${changed.name}" disabled.`);
    });

  user
    .command('enable')
    .description('enable a disabled account')
    .argument('<name>', 'user name')
    .option('--data <dir>', DATA_HELP)
    .action(async (name: string, options: DataOption) => {
      const changed = await clientFor(options).enableUser(name);
      print(`Account "${changed.name}" enabled.`);
    });

  user
    .command('passwd')
    .description("set an account's password (from a prompt, --password-stdin or --password-file)")
    .argument('<name>', 'user name')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--password-file <file>', 'read the password from the first line of FILE')
    .option('--data <dir>', DATA_HELP)
    .action(async (name: string, options: PasswordOptions) => {
      const client = clientFor(options);
      const changed = await client.changePassword(name, await newPassword(name, options));
      print(`Password of "${changed.name}" changed.`);
    });

  program
    .command('sessions')
    .description('list live sessions')
    .option('--json', 'print one JSON array of {sessionId, user, address, since}')
    .option('--data <dir>', DATA_HELP)
    .action(async (options: JsonOption) => {
      const sessions = await clientFor(options).listSessions();
      if (options.json === true) {
        print(JSON.stringify(sessions.map(({ sessionId, user: name, address, since }) => ({ sessionId, user: name, address, since }))));
      } else {
        print(formatSessions(sessions));
      }
    });

  program
    .command('kick')
    .description("end a session (by id) or all of a user's sessions (by name)")
    .argument('<target>', 'SESSION_ID or USER')
    .option('--data <dir>', DATA_HELP)
    .action(async (target: string, options: DataOption) => {
      const ended = await clientFor(options).kick(target);
      if (ended.length === 0) print(`No session matched "${target}".`);
      for (const session of ended) print(`Ended session ${session.sessionId} of ${session.user} (${session.address}).`);
    });

  program
    .command('logs')
    .description('activity log')
    .command('export')
    .description('export the activity report (stdout unless --out)')
    .option('--format <format>', 'csv or json', 'json')
    .option('--user <name>', 'only this user')
    .option('--since <iso>', 'from this time on (inclusive, ISO 8601)')
    .option('--until <iso>', 'before this time (exclusive, ISO 8601)')
    .option('--out <file>', 'write the report to FILE (owner-only) instead of stdout')
    .option('--data <dir>', DATA_HELP)
    .action(async (options: ExportOptions) => {
      // Checked here first, so a typo is reported without needing the server.
      const { query, format } = parseLogQuery({ format: options.format, user: options.user, since: options.since, until: options.until });
      const report = await clientFor(options).exportLogs({ format, user: query.user, since: query.since, until: query.until });
      if (options.out === undefined) {
        print(report);
        return;
      }
      const path = resolve(options.out);
      writeOwnerOnly(path, report);
      io.stderr.write(`Activity report (${format}) written to ${path}\n`);
    });
}

/** Creates or replaces a file readable only by its owner: the report names people and times. */
function writeOwnerOnly(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o600);
  } catch (err) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `Option "--out" names ${path}, which cannot be written: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The mode above applies only to a new file; an existing one is narrowed too.
    if (process.platform !== 'win32') fchmodSync(fd, 0o600);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** Left-aligned columns separated by two spaces, with a header row. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function formatUsers(users: readonly AdminUserView[]): string {
  if (users.length === 0) return 'No accounts yet; add one with `sala-rendezvous user add NAME`.';
  return formatTable(
    ['NAME', 'STATUS', 'CREATED', 'PASSWORD CHANGED'],
    users.map((u) => [u.name, u.isDisabled ? 'disabled' : 'enabled', u.createdAt, u.passwordChangedAt]),
  );
}

function formatSessions(sessions: readonly AdminSessionView[]): string {
  if (sessions.length === 0) return 'No live sessions.';
  return formatTable(
    ['SESSION', 'USER', 'ADDRESS', 'SINCE', 'STATE'],
    sessions.map((s) => [s.sessionId, s.user, s.address, s.since, s.isConnected ? 'connected' : 'reconnecting']),
  );
}
