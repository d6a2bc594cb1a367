/**
 * One worker thread of the PasswordHasher pool: runs argon2id (libsodium crypto_pwhash_str and
 * crypto_pwhash_str_verify) so the server's event loop never does (SECURITY.md H1).
 *
 * Self-contained on purpose: it imports only node: built-ins and libsodium, so it can be compiled
 * on its own (the unit tests do that) and stays small. The message shapes are mirrored in
 * password-hasher.ts; change both together.
 *
 * Passwords arrive as UTF-8 bytes in a transferred buffer and are zeroed after use. Nothing sent
 * back ever carries them: a failure is a fixed reason string, never an exception's message.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import sodiumModule from 'libsodium-wrappers-sumo';

type Request =
  | { id: number; op: 'hash'; password: Uint8Array; opslimit: number; memlimitBytes: number }
  | { id: number; op: 'verify'; hash: string; password: Uint8Array };

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function parseRequest(value: unknown): Request | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (!isPositiveInteger(v['id']) || !(v['password'] instanceof Uint8Array)) return undefined;
  if (v['op'] === 'hash' && isPositiveInteger(v['opslimit']) && isPositiveInteger(v['memlimitBytes'])) {
    return { id: v['id'], op: 'hash', password: v['password'], opslimit: v['opslimit'], memlimitBytes: v['memlimitBytes'] };
  }
  if (v['op'] === 'verify' && typeof v['hash'] === 'string') {
    return { id: v['id'], op: 'verify', hash: v['hash'], password: v['password'] };
  }
  return undefined;
}

function idOf(value: unknown): number {
  if (typeof value === 'object' && value !== null) {
    const id = (value as Record<string, unknown>)['id'];
    if (isPositiveInteger(id)) return id;
  }
  return 0;
}

const port = parentPort;
if (port === null) throw new Error('password-worker.js must be started as a worker thread');

await sodiumModule.ready;
const sodium = sodiumModule;

port.on('message', (message: unknown) => {
  const request = parseRequest(message);
  if (request === undefined) {
    port.postMessage({ type: 'result', id: idOf(message), ok: false, reason: 'bad_request' });
    return;
  }
  const startedMs = performance.now();
  try {
    const value =
      request.op === 'hash'
        ? sodium.crypto_pwhash_str(request.password, request.opslimit, request.memlimitBytes)
        : sodium.crypto_pwhash_str_verify(request.hash, request.password);
    const durationMs = performance.now() - startedMs;
    port.postMessage({ type: 'result', id: request.id, ok: true, value, durationMs });
  } catch {
    // libsodium's message names only the failing call, but send a fixed reason all the same: the
    // pool's error text must never be able to carry anything derived from the input.
    port.postMessage({ type: 'result', id: request.id, ok: false, reason: `${request.op}_failed` });
  } finally {
    request.password.fill(0);
  }
});

port.postMessage({ type: 'ready' });
