/**
 * A child process that speaks JSON lines: one object per stdout line out, one per stdin line in.
 *
 * Used by the demo and the tests. Callers wait for a line matching a predicate with a deadline
 * instead of sleeping. Every line is
 * kept, and a failed wait reports the child's exit status, recent stdout and stderr so the test
 * failure says what the child saw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type JsonLine = Readonly<Record<string, unknown>>;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface JsonChildOptions {
  /** Shown in failure messages; defaults to the command line. */
  readonly label?: string;
  readonly cwd?: string;
  /** Merged over process.env. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** What the predicate looks for, for the failure message. */
  readonly description?: string;
}

export interface EventWaitOptions extends WaitOptions {
  /** Events that mean the wait has failed; defaults to `error` and `warning`. */
  readonly failOnEvents?: readonly string[];
}

export const DEFAULT_WAIT_MS = 5_000;
const DEFAULT_FAIL_EVENTS: readonly string[] = ['error', 'warning'];
const KILL_GRACE_MS = 2_000;
const EXIT_AFTER_FAILURE_MS = 500;
const MAX_STDERR_CHARS = 64 * 1024;
const FAILURE_CONTEXT_LINES = 10;

interface Waiter {
  readonly predicate: (line: JsonLine) => boolean;
  readonly resolve: (line: JsonLine) => void;
  readonly reject: (err: Error) => void;
}

interface StoredLine {
  readonly value: JsonLine;
  isConsumed: boolean;
}

export class JsonChild {
  readonly label: string;
  /** Settles when the process has exited and its output is fully read; never rejects. */
  readonly exited: Promise<ExitStatus>;
  readonly #child: ChildProcess;
  readonly #lines: StoredLine[] = [];
  readonly #stdoutTail: string[] = [];
  readonly #waiters = new Set<Waiter>();
  #stderr = '';
  #exitStatus: ExitStatus | undefined;
  #spawnError: Error | undefined;

  constructor(command: string, args: readonly string[], options: JsonChildOptions = {}) {
    this.label = options.label ?? [command, ...args].join(' ');
    this.#child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const { stdin, stdout, stderr } = this.#child;
    if (stdin === null || stdout === null || stderr === null) throw new Error('spawn gave no stdio pipes');
    // A child that exits while we write would otherwise crash the test process with EPIPE.
    stdin.on('error', () => {});
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-MAX_STDERR_CHARS);
    });
    createInterface({ input: stdout, crlfDelay: Infinity }).on('line', (line) => {
      this.#onLine(line);
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.#child.once('error', (err) => {
        // Only a failed spawn leaves no 'close'; a kill() error after exit is not fatal.
        if (this.#child.pid === undefined) {
          this.#spawnError = err;
          this.#settle({ code: null, signal: null }, resolve);
        }
      });
      // 'close' rather than 'exit': all stdout has been read by then.
      this.#child.once('close', (code, signal) => {
        this.#settle({ code, signal }, resolve);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.#exitStatus;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Every JSON line received so far, consumed or not. */
  get lines(): readonly JsonLine[] {
    return this.#lines.map((line) => line.value);
  }

  /**
   * Resolves with the earliest line, already received or still to come, that matches and that no
   * earlier wait returned; so waiting twice for the same kind of line yields two lines.
   */
  waitFor(predicate: (line: JsonLine) => boolean, options: WaitOptions = {}): Promise<JsonLine> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const description = options.description ?? 'the predicate';
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason);
    const stored = this.#lines.find((line) => !line.isConsumed && predicate(line.value));
    if (stored !== undefined) {
      stored.isConsumed = true;
      return Promise.resolve(stored.value);
    }
    if (this.#exitStatus !== undefined) {
      return Promise.reject(this.#failure(`exited before printing a line matching ${description}`));
    }
    // Two listeners rather than AbortSignal.any(), which Node 20 only has from 20.3.
    const deadlines = [AbortSignal.timeout(timeoutMs), ...(options.signal === undefined ? [] : [options.signal])];
    return new Promise<JsonLine>((resolve, reject) => {
      const detach = (): void => {
        for (const deadline of deadlines) deadline.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        detach();
        this.#waiters.delete(waiter);
        const why = options.signal?.aborted === true ? 'was aborted' : `timed out after ${timeoutMs} ms`;
        reject(this.#failure(`${why} waiting for a line matching ${description}`));
      };
      const waiter: Waiter = {
        predicate,
        resolve: (line) => {
          detach();
          resolve(line);
        },
        reject: (err) => {
          detach();
          reject(err);
        },
      };
      for (const deadline of deadlines) deadline.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /**
   * waitFor a line whose `event` field equals `event`. A line with one of `failOnEvents` (default
   * `error` and `warning`) that arrives first rejects instead: the probe hit a problem.
   */
  async waitForEvent(event: string, options: EventWaitOptions = {}): Promise<JsonLine> {
    const failOn = (options.failOnEvents ?? DEFAULT_FAIL_EVENTS).filter((name) => name !== event);
    const line = await this.waitFor(
      (candidate) => candidate['event'] === event || failOn.includes(String(candidate['event'])),
      { description: `event "${event}"`, ...options },
    );
    if (line['event'] !== event) {
      // A probe usually exits right after reporting a failure; let its stack reach stderr first.
      await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, EXIT_AFTER_FAILURE_MS).unref())]);
      throw this.#failure(`printed ${JSON.stringify(line)} while waiting for event "${event}"`);
    }
    return line;
  }

  /** Writes one line of raw text to the child's stdin (a password line before the JSON commands). */
  writeLine(text: string): void {
    this.#child.stdin?.write(`${text}\n`);
  }

  /** Writes one JSON line to the child's stdin. */
  send(value: unknown): void {
    this.#child.stdin?.write(`${JSON.stringify(value)}\n`);
  }

  /**
   * Asks the child to finish by closing its stdin — the one request that works the same on Windows,
   * where signals cannot be caught — then kills it if it has not exited after graceMs.
   */
  async stop(graceMs = KILL_GRACE_MS): Promise<ExitStatus> {
    return this.#terminate(() => this.#child.stdin?.end(), graceMs);
  }

  /** SIGTERM, then SIGKILL after graceMs. Idempotent; resolves when the process is gone. */
  async kill(graceMs = KILL_GRACE_MS): Promise<ExitStatus> {
    return this.#terminate(() => this.#child.kill('SIGTERM'), graceMs);
  }

  async #terminate(ask: () => void, graceMs: number): Promise<ExitStatus> {
    if (this.#exitStatus !== undefined) return this.#exitStatus;
    ask();
    const timer = setTimeout(() => {
      this.#child.kill('SIGKILL');
    }, graceMs);
    timer.unref();
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Exit status, recent stdout and stderr, for assertion messages. */
  describeState(): string {
    const status =
      this.#spawnError !== undefined
        ? `failed to start: ${this.#spawnError.message}`
        : this.#exitStatus === undefined
          ? 'still running'
          : `exited with code ${String(this.#exitStatus.code)}, signal ${String(this.#exitStatus.signal)}`;
    const stdout = this.#stdoutTail.length > 0 ? this.#stdoutTail.join('\n') : '(none)';
    const stderr = this.#stderr.trim() === '' ? '(none)' : this.#stderr.trimEnd();
    return `[${this.label}] ${status}\n--- last stdout lines ---\n${stdout}\n--- stderr ---\n${stderr}`;
  }

  #onLine(text: string): void {
    this.#stdoutTail.push(text);
    if (this.#stdoutTail.length > FAILURE_CONTEXT_LINES) this.#stdoutTail.shift();
    const value = parseObject(text);
    if (value === undefined) return;
    const stored: StoredLine = { value, isConsumed: false };
    this.#lines.push(stored);
    for (const waiter of this.#waiters) {
      if (!waiter.predicate(value)) continue;
      this.#waiters.delete(waiter);
      stored.isConsumed = true;
      waiter.resolve(value);
      return;
    }
  }

  #settle(status: ExitStatus, resolve: (status: ExitStatus) => void): void {
    if (this.#exitStatus !== undefined) return;
    this.#exitStatus = status;
    for (const waiter of this.#waiters) waiter.reject(this.#failure('exited while a line was awaited'));
    this.#waiters.clear();
    resolve(status);
  }

  #failure(what: string): Error {
    return new Error(`${this.label} ${what}\n${this.describeState()}`);
  }
}

function parseObject(text: string): JsonLine | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return parsed as JsonLine;
}
