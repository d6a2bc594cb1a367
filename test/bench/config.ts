import { DEFAULTS } from '../../common/config/index.js';
import { AEAD_TAG_BYTES } from '../../common/crypto/index.js';
import type { AeadName } from './protocol.js';

/** What one `npm run bench` run measures; every field can be shrunk from the environment. */
export interface BenchConfig {
  /** Bytes per throughput transfer (memory→discard and file→file). */
  transferBytes: number;
  /** Bytes per write / per channel message in the bulk cases. */
  chunkBytes: number;
  /** Measured round trips per ping-pong run, after `warmupPings`. */
  pings: number;
  warmupPings: number;
  /** Bytes per ping and per echo. */
  pingBytes: number;
  /** Each case runs this many times, raw and secure interleaved; the table shows the median. */
  repeats: number;
  /** Which groups of cases to run. */
  cases: ReadonlySet<CaseGroup>;
  /** Secure-channel AEAD backends for memory->discard (file->file and ping always use the default: node:crypto, libsodium under 4 KiB). */
  aeads: ReadonlySet<AeadName>;
}

export type CaseGroup = 'mem' | 'file' | 'ping';
const CASE_GROUPS: readonly CaseGroup[] = ['mem', 'file', 'ping'];
const AEAD_NAMES: readonly AeadName[] = ['node', 'libsodium'];

export const GIB = 1024 ** 3;
export const MIB = 1024 ** 2;
const KIB = 1024;

export class BenchConfigError extends Error {
  override get name(): string {
    return 'BenchConfigError';
  }
}

/** Parses `1073741824`, `1G`, `256M`, `64K` (binary units). */
export function parseByteCount(text: string, name: string): number {
  const match = /^(\d+)\s*([KMG]i?B?)?$/i.exec(text.trim());
  if (match === null) throw new BenchConfigError(`${name} must be a byte count such as 1073741824, 1G, 256M or 64K`);
  const unit = (match[2] ?? '').charAt(0).toUpperCase();
  const scale = unit === 'G' ? GIB : unit === 'M' ? MIB : unit === 'K' ? KIB : 1;
  const value = Number(match[1]) * scale;
  if (!Number.isSafeInteger(value) || value <= 0) throw new BenchConfigError(`${name} must be a positive byte count`);
  return value;
}

function parsePositiveInt(text: string, name: string): number {
  if (!/^\d+$/.test(text.trim())) throw new BenchConfigError(`${name} must be a positive integer`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new BenchConfigError(`${name} must be a positive integer`);
  return value;
}

function parseList<T extends string>(allowed: readonly T[]): (text: string, name: string) => ReadonlySet<T> {
  return (text, name) => {
    const picked = new Set<T>();
    for (const word of text.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
      const value = allowed.find((a) => a === word);
      if (value === undefined) throw new BenchConfigError(`${name} takes a comma list of ${allowed.join(', ')}`);
      picked.add(value);
    }
    if (picked.size === 0) throw new BenchConfigError(`${name} must name at least one of ${allowed.join(', ')}`);
    return picked;
  };
}

export function readBenchConfig(env: NodeJS.ProcessEnv): BenchConfig {
  const read = <T>(name: string, parse: (text: string, name: string) => T, fallback: T): T => {
    const text = env[name];
    return text === undefined || text.trim() === '' ? fallback : parse(text, name);
  };
  // One channel message must fit a frame: the AEAD tag and SecureChannel's frame-kind byte come off.
  const maxPayloadBytes = DEFAULTS.maxFrameBytes - AEAD_TAG_BYTES - 1;
  const config: BenchConfig = {
    transferBytes: read('SALA_BENCH_BYTES', parseByteCount, GIB),
    chunkBytes: read('SALA_BENCH_CHUNK_BYTES', parseByteCount, DEFAULTS.bulkChunkBytes),
    pings: read('SALA_BENCH_PINGS', parsePositiveInt, 10_000),
    warmupPings: read('SALA_BENCH_WARMUP_PINGS', parsePositiveInt, 1_000),
    pingBytes: read('SALA_BENCH_PING_BYTES', parseByteCount, 100),
    repeats: read('SALA_BENCH_REPEATS', parsePositiveInt, 3),
    cases: read('SALA_BENCH_CASES', parseList(CASE_GROUPS), new Set(CASE_GROUPS)),
    aeads: read('SALA_BENCH_AEADS', parseList(AEAD_NAMES), new Set(AEAD_NAMES)),
  };
  if (config.chunkBytes > maxPayloadBytes) {
    throw new BenchConfigError(`SALA_BENCH_CHUNK_BYTES must be at most ${maxPayloadBytes} (one channel message)`);
  }
  if (config.pingBytes < 4 || config.pingBytes > 60 * KIB) {
    throw new BenchConfigError('SALA_BENCH_PING_BYTES must be between 4 and 61440');
  }
  return config;
}
