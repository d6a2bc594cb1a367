/**
 * The JSON lines the benchmark's two processes exchange over the receiver's stdin and stdout.
 * Both ends parse what they read from `unknown`; a line that does not fit is a broken benchmark.
 *
 *   parent → receiver (stdin):  one ReceiverTask per line
 *   receiver → parent (stdout): bench.listening { id, port }, then bench.done { id, …ReceiverStats }
 *                               or bench.failed { id, message }
 */

/** `message` is a SecureChannel wrapped in a MessageChannel (typed ping/pong). */
export type Transport = 'raw' | 'secure' | 'message';
export type AeadName = 'node' | 'libsodium';

interface TaskBase {
  id: number;
  transport: Transport;
  aead: AeadName;
}

/** Count bytes and throw them away; done once `expectedBytes` arrived. */
export interface DiscardTask extends TaskBase {
  kind: 'discard';
  expectedBytes: number;
}

/** Write everything to `path` with a file stream; done once the file is closed. */
export interface FileTask extends TaskBase {
  kind: 'file';
  expectedBytes: number;
  path: string;
  chunkBytes: number;
}

/** Send each `messageBytes`-byte message straight back; done when the connection closes. */
export interface EchoTask extends TaskBase {
  kind: 'echo';
  messageBytes: number;
}

export type ReceiverTask = DiscardTask | FileTask | EchoTask;

/** What the receiver measured about itself between accepting the connection and finishing. */
export interface ReceiverStats {
  bytes: number;
  cpuMs: number;
  wallMs: number;
  peakRssBytes: number;
}

export const EVENT_LISTENING = 'bench.listening';
export const EVENT_DONE = 'bench.done';
export const EVENT_FAILED = 'bench.failed';

export class ProtocolError extends Error {
  override get name(): string {
    return 'BenchProtocolError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(record: Record<string, unknown>, key: string): number {
  const value = record[key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ProtocolError(`${key} must be a non-negative number`);
  }
  return value;
}

function oneOf<T extends string>(record: Record<string, unknown>, key: string, values: readonly T[]): T {
  const value = record[key];
  const found = values.find((v) => v === value);
  if (found === undefined) throw new ProtocolError(`${key} must be one of ${values.join(', ')}`);
  return found;
}

export function parseTask(value: unknown): ReceiverTask {
  if (!isRecord(value)) throw new ProtocolError('a task must be an object');
  const base: TaskBase = {
    id: count(value, 'id'),
    transport: oneOf(value, 'transport', ['raw', 'secure', 'message'] as const),
    aead: oneOf(value, 'aead', ['node', 'libsodium'] as const),
  };
  const kind = oneOf(value, 'kind', ['discard', 'file', 'echo'] as const);
  switch (kind) {
    case 'discard':
      return { ...base, kind, expectedBytes: count(value, 'expectedBytes') };
    case 'file': {
      const path = value['path'];
      if (typeof path !== 'string' || path === '') throw new ProtocolError('path must be a file path');
      return { ...base, kind, expectedBytes: count(value, 'expectedBytes'), path, chunkBytes: count(value, 'chunkBytes') };
    }
    case 'echo':
      return { ...base, kind, messageBytes: count(value, 'messageBytes') };
    default:
      return assertNever(kind);
  }
}

export function parseStats(record: Record<string, unknown>): ReceiverStats {
  return {
    bytes: count(record, 'bytes'),
    cpuMs: count(record, 'cpuMs'),
    wallMs: count(record, 'wallMs'),
    peakRssBytes: count(record, 'peakRssBytes'),
  };
}

export function assertNever(value: never): never {
  throw new ProtocolError(`unexpected value ${String(value)}`);
}
