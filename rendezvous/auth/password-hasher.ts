/**
 * argon2id password hashing on a small pool of worker threads, with a bounded queue.
 *
 * SECURITY.md H1: one argon2id hash costs ~100-350 ms of a core and 64 MiB, so a login flood is a
 * CPU and memory lever. The pool caps both: `workers` hashes run at once (64 MiB each) and at most
 * `maxQueue` wait; one more is refused at once with SALA_E_BUSY instead of queueing without bound.
 * The main thread never runs argon2 (it does not even load libsodium for this); the rate limits in
 * rate-limiter.ts apply before anything reaches this pool.
 *
 * Passwords are hashed as NFC UTF-8 (password-policy.ts), travel to the worker in a transferred
 * buffer that the worker zeroes, and appear in no error message or log.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigInvalidError, SalaError } from '../../common/index.js';
import { ARGON2ID_INTERACTIVE, MAX_VERIFY_COST, parseArgon2idHash } from './password-hash-format.js';
import { PASSWORD_LIMITS, passwordBytes } from './password-policy.js';

/** Belongs in common/config/defaults.ts; kept here until that file can take it. */
export const PASSWORD_HASHER_DEFAULTS = Object.freeze({
  /** SECURITY.md H1: two hashes at once leaves a 2-core server a core for everything else. */
  workers: 2,
  /** SECURITY.md H1: then SALA_E_BUSY. With ~250 ms per hash, a full queue drains in ~2 s. */
  maxQueue: 16,
  opslimit: ARGON2ID_INTERACTIVE.opslimit,
  memlimitBytes: ARGON2ID_INTERACTIVE.memlimitBytes,
  /** A job running this long means a wedged worker: it is terminated, replaced and the job fails. */
  jobTimeoutMs: 30_000,
  /** estimateMs() before the first measurement: an interactive argon2id verify on a laptop core. */
  initialEstimateMs: 250,
});

/** How many recent job durations estimateMs() takes the median of (odd, so the median is one sample). */
const ESTIMATE_SAMPLES = 31;
/** Respawn delay after a worker fails to start, doubling per consecutive failure up to the max. */
const RESPAWN_BASE_MS = 100;
const RESPAWN_MAX_MS = 5_000;

export interface PasswordHasherOptions {
  /** Worker threads, each running one hash at a time (1-16; default 2). */
  workers?: number;
  /** Jobs that may wait beyond the running ones before SALA_E_BUSY (0-1024; default 16). */
  maxQueue?: number;
  /** argon2id passes (1-16; default 2, libsodium's OPSLIMIT_INTERACTIVE). Lower only in tests. */
  opslimit?: number;
  /** argon2id memory in bytes (8 KiB-1 GiB, a multiple of 1 KiB; default 64 MiB). Lower only in tests. */
  memlimitBytes?: number;
  /** A job running longer terminates its worker (default 30 s). */
  jobTimeoutMs?: number;
  /** What estimateMs() answers before any job has finished (default 250). */
  initialEstimateMs?: number;
  /** The compiled worker script; by default resolvePasswordWorkerUrl(). */
  workerUrl?: URL;
}

/** Test-only access to the pool's workers (kept off the public surface behind a symbol). */
export const PASSWORD_HASHER_TEST_HOOKS = Symbol('sala.passwordHasher.testHooks');

export interface PasswordHasherTestHooks {
  /** Terminates worker `index` as if it had crashed; resolves once it has exited. */
  killWorker(index: number): Promise<void>;
  /** The thread id of each worker slot (-1 while a slot has no worker). */
  threadIds(): number[];
}

/**
 * Where the compiled worker script is: next to this module when running from dist/, else
 * dist/rendezvous/auth/password-worker.js under the repository root (running the .ts sources, as
 * vitest does: a worker thread cannot load TypeScript). Throws if neither exists.
 */
export function resolvePasswordWorkerUrl(moduleUrl: string | URL = import.meta.url): URL {
  const sibling = new URL('./password-worker.js', moduleUrl);
  if (existsSync(sibling)) return sibling;
  const compiled = new URL('../../dist/rendezvous/auth/password-worker.js', moduleUrl);
  if (existsSync(compiled)) return compiled;
  throw new SalaError(
    'SALA_E_CONFIG_INVALID',
    `The password worker script is missing (looked for ${fileURLToPath(sibling)} and ${fileURLToPath(compiled)}). ` +
      'Run `npm run build` to compile it.',
  );
}

type JobFields =
  | { op: 'hash'; opslimit: number; memlimitBytes: number }
  | { op: 'verify'; hash: string };

interface Job {
  fields: JobFields;
  password: Uint8Array<ArrayBuffer>;
  resolve: (value: unknown) => void;
  reject: (err: SalaError) => void;
}

interface Slot {
  worker: Worker | undefined;
  isReady: boolean;
  job: (Job & { id: number }) | undefined;
  jobTimer: NodeJS.Timeout | undefined;
  respawnTimer: NodeJS.Timeout | undefined;
  /** Why we terminated this worker ourselves, used as the message of the job it was running. */
  killReason: string | undefined;
  exited: Promise<void> | undefined;
}

function busy(message: string, cause?: unknown): SalaError {
  return new SalaError('SALA_E_BUSY', message, cause === undefined ? undefined : { cause });
}

function integerOption(options: PasswordHasherOptions, name: keyof PasswordHasherOptions, min: number, max: number, fallback: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigInvalidError(name, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export class PasswordHasher {
  readonly #workerUrl: URL;
  readonly #maxQueue: number;
  readonly #opslimit: number;
  readonly #memlimitBytes: number;
  readonly #jobTimeoutMs: number;
  readonly #initialEstimateMs: number;
  readonly #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextJobId = 1;
  #startFailures = 0;
  readonly #samples: number[] = [];
  #sampleCursor = 0;
  #isClosed = false;
  #closing: Promise<void> | undefined;

  constructor(options: PasswordHasherOptions = {}) {
    const d = PASSWORD_HASHER_DEFAULTS;
    const workers = integerOption(options, 'workers', 1, 16, d.workers);
    this.#maxQueue = integerOption(options, 'maxQueue', 0, 1_024, d.maxQueue);
    this.#opslimit = integerOption(options, 'opslimit', 1, 16, d.opslimit);
    this.#memlimitBytes = integerOption(options, 'memlimitBytes', 8 * 1024, 1024 ** 3, d.memlimitBytes);
    if (this.#memlimitBytes % 1024 !== 0) throw new ConfigInvalidError('memlimitBytes', 'must be a multiple of 1024');
    this.#jobTimeoutMs = integerOption(options, 'jobTimeoutMs', 1, 3_600_000, d.jobTimeoutMs);
    this.#initialEstimateMs = integerOption(options, 'initialEstimateMs', 0, 60_000, d.initialEstimateMs);
    if (options.workerUrl !== undefined && !(options.workerUrl instanceof URL)) {
      throw new ConfigInvalidError('workerUrl', 'must be a URL');
    }
    this.#workerUrl = options.workerUrl ?? resolvePasswordWorkerUrl();
    for (let i = 0; i < workers; i += 1) {
      const slot: Slot = { worker: undefined, isReady: false, job: undefined, jobTimer: undefined, respawnTimer: undefined, killReason: undefined, exited: undefined };
      this.#slots.push(slot);
      this.#spawn(slot);
    }
  }

  /** Hashes a password with argon2id (crypto_pwhash_str). Rejects SALA_E_PASSWORD_REJECTED if over 1,024 bytes. */
  async hash(password: string): Promise<string> {
    const bytes = typeof password === 'string' ? passwordBytes(password) : undefined;
    if (bytes === undefined) {
      throw new SalaError('SALA_E_PASSWORD_REJECTED', `A password must be text of at most ${PASSWORD_LIMITS.maxBytes} bytes.`);
    }
    const value = await this.#submit({ op: 'hash', opslimit: this.#opslimit, memlimitBytes: this.#memlimitBytes }, bytes);
    if (typeof value !== 'string') throw busy('The password worker gave an unusable answer; try again.');
    return value;
  }

  /**
   * True if `password` matches the stored `hash`. A malformed or implausibly costly stored hash is
   * false without any work. A password over the byte limit costs a full verify all the same and is
   * false, so its answer time does not reveal whether the account exists.
   */
  async verify(hash: string, password: string): Promise<boolean> {
    if (this.#isClosed) throw busy('The password hasher is closed.');
    const cost = parseArgon2idHash(hash);
    if (cost === undefined || typeof password !== 'string') return false;
    if (cost.opslimit > Math.max(MAX_VERIFY_COST.opslimit, this.#opslimit)) return false;
    if (cost.memlimitBytes > Math.max(MAX_VERIFY_COST.memlimitBytes, this.#memlimitBytes)) return false;
    const bytes = passwordBytes(password);
    const value = await this.#submit({ op: 'verify', hash }, bytes ?? new Uint8Array(0));
    if (typeof value !== 'boolean') throw busy('The password worker gave an unusable answer; try again.');
    return value && bytes !== undefined;
  }

  /** True if `hash` was made with other parameters than this hasher's (rehash after the next good login). */
  needsRehash(hash: string): boolean {
    const cost = parseArgon2idHash(hash);
    return cost === undefined || cost.opslimit !== this.#opslimit || cost.memlimitBytes !== this.#memlimitBytes;
  }

  /**
   * The median duration of the last 31 hash/verify runs (measured inside the worker, so neither
   * queueing nor worker start-up counts). The server waits this long before refusing an unknown
   * user, so that answer takes as long as a wrong password without spending a hash on it.
   */
  estimateMs(): number {
    if (this.#samples.length === 0) return this.#initialEstimateMs;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return sorted[(sorted.length - 1) >> 1] ?? this.#initialEstimateMs;
  }

  /** Rejects queued and running jobs with SALA_E_BUSY and terminates the workers. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  [PASSWORD_HASHER_TEST_HOOKS](): PasswordHasherTestHooks {
    return {
      killWorker: async (index) => {
        const slot = this.#slots[index];
        if (slot?.worker === undefined) throw new RangeError(`no worker in slot ${index}`);
        const exited = slot.exited;
        slot.killReason = 'A password worker stopped unexpectedly; try again.';
        await slot.worker.terminate();
        await exited;
      },
      threadIds: () => this.#slots.map((slot) => slot.worker?.threadId ?? -1),
    };
  }

  #submit(fields: JobFields, password: Uint8Array<ArrayBuffer>): Promise<unknown> {
    if (this.#isClosed) return Promise.reject(busy('The password hasher is closed.'));
    const idle = this.#slots.find((slot) => slot.worker !== undefined && slot.job === undefined);
    if (idle === undefined && this.#queue.length >= this.#maxQueue) {
      return Promise.reject(busy('The server is busy checking other passwords; try again in a few seconds.'));
    }
    return new Promise((resolve, reject) => {
      const job: Job = { fields, password, resolve, reject };
      if (idle !== undefined) this.#dispatch(idle, job);
      else this.#queue.push(job);
    });
  }

  /**
   * A worker that has not said `ready` yet still takes a job: the message waits in its port until
   * libsodium has loaded. If the worker dies first, the exit handler rejects the job.
   */
  #dispatch(slot: Slot, job: Job): void {
    const worker = slot.worker;
    if (worker === undefined) throw new Error('dispatch to an empty slot');
    const id = this.#nextJobId;
    this.#nextJobId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    slot.job = { ...job, id };
    slot.jobTimer = setTimeout(() => {
      slot.killReason = 'Checking the password took too long; try again.';
      void worker.terminate();
    }, this.#jobTimeoutMs);
    slot.jobTimer.unref();
    worker.ref();
    // The buffer is transferred, so the only copy left is the worker's, which it zeroes.
    worker.postMessage({ id, password: job.password, ...job.fields }, [job.password.buffer]);
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (slot.worker === undefined || slot.job !== undefined) continue;
      const job = this.#queue.shift();
      if (job === undefined) return;
      this.#dispatch(slot, job);
    }
  }

  #spawn(slot: Slot): void {
    slot.respawnTimer = undefined;
    slot.isReady = false;
    slot.killReason = undefined;
    const worker = new Worker(this.#workerUrl, { name: 'sala-password' });
    slot.worker = worker;
    worker.unref();
    worker.on('message', (message: unknown) => this.#onMessage(slot, worker, message));
    // The exit handler does the work; an 'error' (an uncaught exception) is always followed by one.
    let crash: unknown;
    worker.on('error', (err) => {
      crash = err;
    });
    worker.on('messageerror', () => {
      slot.killReason = 'The password worker sent an unreadable answer; try again.';
      void worker.terminate();
    });
    slot.exited = new Promise((resolve) => {
      worker.once('exit', () => {
        this.#onExit(slot, worker, crash);
        resolve();
      });
    });
  }

  #onMessage(slot: Slot, worker: Worker, message: unknown): void {
    if (slot.worker !== worker || typeof message !== 'object' || message === null) return;
    const m = message as Record<string, unknown>;
    if (m['type'] === 'ready') {
      slot.isReady = true;
      this.#startFailures = 0;
      return;
    }
    const job = slot.job;
    if (m['type'] !== 'result' || job === undefined || m['id'] !== job.id) return;
    slot.job = undefined;
    clearTimeout(slot.jobTimer);
    worker.unref();
    if (m['ok'] === true) {
      if (typeof m['durationMs'] === 'number' && Number.isFinite(m['durationMs'])) this.#recordSample(m['durationMs']);
      job.resolve(m['value']);
    } else {
      job.reject(busy('The password could not be checked; try again.'));
    }
    this.#pump();
  }

  #onExit(slot: Slot, worker: Worker, crash: unknown): void {
    if (slot.worker !== worker) return;
    const wasReady = slot.isReady;
    const job = slot.job;
    slot.worker = undefined;
    slot.job = undefined;
    clearTimeout(slot.jobTimer);
    if (this.#isClosed) return;
    job?.reject(busy(slot.killReason ?? 'A password worker stopped unexpectedly; try again.', crash));
    if (wasReady) {
      this.#spawn(slot);
      this.#pump();
      return;
    }
    // It never loaded (a broken install, out of memory): retry with backoff rather than in a tight
    // loop, and fail queued jobs now if no worker is up to run them.
    this.#startFailures += 1;
    if (!this.#slots.some((s) => s.worker !== undefined && s.isReady)) {
      const queued = this.#queue;
      this.#queue = [];
      for (const waiting of queued) waiting.reject(busy('The password workers could not start; try again later.', crash));
    }
    const delayMs = Math.min(RESPAWN_MAX_MS, RESPAWN_BASE_MS * 2 ** Math.min(this.#startFailures - 1, 16));
    slot.respawnTimer = setTimeout(() => {
      this.#spawn(slot);
      this.#pump();
    }, delayMs);
    slot.respawnTimer.unref();
  }

  #recordSample(durationMs: number): void {
    if (this.#samples.length < ESTIMATE_SAMPLES) this.#samples.push(durationMs);
    else this.#samples[this.#sampleCursor] = durationMs;
    this.#sampleCursor = (this.#sampleCursor + 1) % ESTIMATE_SAMPLES;
  }

  async #shutdown(): Promise<void> {
    this.#isClosed = true;
    const closed = (): SalaError => busy('The password hasher was closed before this password was checked.');
    const queued = this.#queue;
    this.#queue = [];
    for (const job of queued) job.reject(closed());
    const exits: Promise<unknown>[] = [];
    for (const slot of this.#slots) {
      clearTimeout(slot.respawnTimer);
      clearTimeout(slot.jobTimer);
      slot.job?.reject(closed());
      slot.job = undefined;
      if (slot.worker !== undefined) {
        exits.push(slot.worker.terminate());
        if (slot.exited !== undefined) exits.push(slot.exited);
      }
    }
    await Promise.all(exits);
  }
}
