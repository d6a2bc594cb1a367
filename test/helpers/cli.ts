/**
 * Helpers for end-to-end tests of the compiled command-line programs (dist/…/cli.js): one-shot
 * commands with their exit code and output, long-running servers as JsonChild (JSON lines) or
 * TextChild (raw text, for the readable mode and for checking that nothing but JSON reaches
 * stdout). Every process is killed when the test ends; every wait has a deadline.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { JsonChild, type ExitStatus } from '../../common/process/json-child.js';
import { AdminClient } from '../../rendezvous/admin/admin-client.js';

/** The repository root (this file is test/helpers/cli.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The compiled rendezvous CLI, relative to REPO_ROOT (the children run with that cwd). */
export const RENDEZVOUS_CLI = join('dist', 'rendezvous', 'cli.js');

const ONE_SHOT_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 15_000;
const KILL_GRACE_MS = 2_000;

function assertBuilt(script: string): void {
  if (!existsSync(join(REPO_ROOT, script))) {
    throw new Error(`${join(REPO_ROOT, script)} does not exist; build first with \`npx tsc -p tsconfig.build.json\` (npm test does).`);
  }
}

/** Rejects with `what` when `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface CliResult {
  /** Exit code; null when the process was ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed; stdin is closed at once when absent. */
  readonly stdin?: string;
  readonly timeoutMs?: number;
}

/**
 * Runs `node <script> ...args` to completion and resolves with its exit status and output, whatever
 * the exit code. A process still running after the deadline is killed (SIGTERM) and the result
 * then has `signal` set.
 */
export function runNodeScript(script: string, args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  assertBuilt(script);
  return new Promise<CliResult>((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [script, ...args],
      { cwd: REPO_ROOT, timeout: options.timeoutMs ?? ONE_SHOT_TIMEOUT_MS, windowsHide: true, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number' && error.signal == null && child.exitCode === null) {
          reject(error); // spawn failure, not an exit status
          return;
        }
        resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr });
      },
    );
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.stdin ?? '');
  });
}

/** `sala-rendezvous ...args`, run to completion. */
export function runRendezvous(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return runNodeScript(RENDEZVOUS_CLI, args, options);
}

/** Describes a result for assertion messages. */
export function describeResult(args: readonly string[], result: CliResult): string {
  return `sala-rendezvous ${args.join(' ')} → code ${String(result.code)}, signal ${String(result.signal)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** Loopback only, ephemeral ports, no mDNS: every test server starts with these. */
export function startArgs(dataDir: string, options: { json?: boolean; extra?: readonly string[] } = {}): string[] {
  return [
    'start',
    ...(options.json === false ? [] : ['--json']),
    '--no-mdns',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--admin-port',
    '0',
    '--data',
    dataDir,
    ...(options.extra ?? []),
  ];
}

export interface ListeningEvent {
  readonly event: 'listening';
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  readonly fingerprint: string;
}

function asListening(line: Readonly<Record<string, unknown>>): ListeningEvent {
  const { event, host, port, adminPort, fingerprint } = line;
  if (
    event !== 'listening' ||
    typeof host !== 'string' ||
    typeof port !== 'number' ||
    typeof adminPort !== 'number' ||
    typeof fingerprint !== 'string'
  ) {
    throw new Error(`not a listening event: ${JSON.stringify(line)}`);
  }
  return { event, host, port, adminPort, fingerprint };
}

export interface CliServer {
  readonly child: JsonChild;
  readonly dataDir: string;
  readonly listening: ListeningEvent;
}

/**
 * `sala-rendezvous start --json` on `dataDir` (loopback, ephemeral ports, no mDNS), killed when the
 * test ends; resolves once the listening line is out.
 */
export async function startRendezvous(dataDir: string, options: { nodeArgs?: readonly string[] } = {}): Promise<CliServer> {
  assertBuilt(RENDEZVOUS_CLI);
  const child = new JsonChild(process.execPath, [...(options.nodeArgs ?? []), RENDEZVOUS_CLI, ...startArgs(dataDir)], {
    cwd: REPO_ROOT,
    label: 'sala-rendezvous start',
  });
  onTestFinished(async () => {
    await child.kill(KILL_GRACE_MS);
  });
  const line = await child.waitForEvent('listening', { timeoutMs: START_TIMEOUT_MS });
  return { child, dataDir, listening: asListening(line) };
}

/**
 * Resolves once the server has answered an admin request: its event loop has run past start-up.
 * Used before a SIGINT, because `start` prints its listening line before it installs its SIGINT
 * handler (see the it.fails test "handles a SIGINT sent as soon as the listening line is out").
 */
export async function untilServing(server: CliServer): Promise<void> {
  await withDeadline(AdminClient.fromDataDir(server.dataDir, { timeoutMs: 10_000 }).listUsers(), 10_000, 'an admin API answer');
}

/** Sends `signal` to a running JsonChild (POSIX semantics; on Windows any signal terminates). */
export function signalChild(child: JsonChild, signal: NodeJS.Signals): void {
  if (child.pid === undefined) throw new Error(`${child.label} has no pid`);
  process.kill(child.pid, signal);
}

/** Waits for a JsonChild to exit, with a deadline. */
export function exitOf(child: JsonChild, ms = 10_000): Promise<ExitStatus> {
  return withDeadline(child.exited, ms, `${child.label} to exit\n${child.describeState()}`);
}

/**
 * A child whose stdout is kept as raw text (JsonChild drops lines that are not JSON). Killed
 * (SIGKILL) when the test ends if still running.
 */
export class TextChild {
  readonly exited: Promise<ExitStatus>;
  readonly #child: ChildProcess;
  readonly #label: string;
  #stdout = '';
  #stderr = '';
  #exitStatus: ExitStatus | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(script: string, args: readonly string[]) {
    assertBuilt(script);
    this.#label = `node ${script} ${args.join(' ')}`;
    this.#child = spawn(process.execPath, [script, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const { stdin, stdout, stderr } = this.#child;
    if (stdin === null || stdout === null || stderr === null) throw new Error('spawn gave no stdio pipes');
    stdin.on('error', () => undefined);
    stdout.setEncoding('utf8');
    stderr.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      this.#stdout += chunk;
      for (const wake of this.#waiters) wake();
    });
    stderr.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.#child.once('close', (code, signal) => {
        this.#exitStatus = { code, signal };
        for (const wake of this.#waiters) wake();
        resolve(this.#exitStatus);
      });
    });
    onTestFinished(async () => {
      if (this.#exitStatus !== undefined) return;
      this.#child.kill('SIGKILL');
      await this.exited;
    });
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Sends a signal (`child.kill(signal)`). */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** Resolves once stdout satisfies `predicate`; rejects at the deadline or when the child exits first. */
  waitForStdout(predicate: (stdout: string) => boolean, ms = START_TIMEOUT_MS, what = 'the expected output'): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err === undefined) resolve(this.#stdout);
        else reject(err);
      };
      const check = (): void => {
        if (predicate(this.#stdout)) finish();
        else if (this.#exitStatus !== undefined) finish(new Error(`${this.#label} exited before printing ${what}\n${this.describeState()}`));
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${ms} ms waiting for ${what}\n${this.describeState()}`)), ms);
      this.#waiters.add(check);
      check();
    });
  }

  describeState(): string {
    const status = this.#exitStatus === undefined ? 'still running' : `exited with code ${String(this.#exitStatus.code)}, signal ${String(this.#exitStatus.signal)}`;
    return `[${this.#label}] ${status}\n--- stdout ---\n${this.#stdout}\n--- stderr ---\n${this.#stderr}`;
  }
}

/** Minimal RFC 4180 reader: rows of cells; quoted cells may hold commas, quotes and line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let isQuoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (isQuoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') {
        isQuoted = false;
      } else {
        cell += ch;
      }
    } else if (ch === '"') {
      isQuoted = true;
    } else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      // CRLF: the LF ends the row
    } else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else {
      cell += ch;
    }
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}
