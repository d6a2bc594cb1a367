import { tmpdir } from 'node:os';
import { BenchConfigError, parseByteCount } from './config.js';

/** What one `npm run bench:files` run measures; every field can be changed from the environment. */
export interface FilesBenchConfig {
  /** The file of the throughput and resume cases. */
  bytes: number;
  /** The file of the memory case (RSS flat in file size); 0 skips it. */
  bigBytes: number;
  /** Runs of every throughput variant, interleaved; the table shows medians. */
  repeats: number;
  /** Receiver credit windows to compare (PeerOptions.tuning.fileWindowBytes); the first is the reference. */
  windows: readonly number[];
  cases: ReadonlySet<FilesCase>;
  /** Where the files go (source, copies, data dirs): one disk for Sala and the baseline. */
  workRoot: string;
  /** Node flags for the peer processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
  peerNodeArgs: readonly string[];
}

/**
 * throughput: Sala vs raw TCP per window; chat: chat round trips during a transfer, per window;
 * big: RSS over a large file; resume: receiver killed at 50%.
 */
export type FilesCase = 'throughput' | 'chat' | 'big' | 'resume';
const FILES_CASES: readonly FilesCase[] = ['throughput', 'chat', 'big', 'resume'];

export const DEFAULT_WINDOW_BYTES = 256 * 1024;

function positiveInt(text: string, name: string): number {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) throw new BenchConfigError(`${name} must be a positive integer`);
  return value;
}

function byteCountOrOff(text: string, name: string): number {
  return /^(0|off)$/i.test(text.trim()) ? 0 : parseByteCount(text, name);
}

function byteCounts(text: string, name: string): readonly number[] {
  const values = text.split(',').map((w) => w.trim()).filter((w) => w !== '').map((w) => parseByteCount(w, name));
  if (values.length === 0) throw new BenchConfigError(`${name} must list at least one byte count`);
  // The protocol caps one grant at 64 MiB; a window beyond that could never be granted at once.
  if (values.some((v) => v < 64 * 1024 || v > 64 * 1024 * 1024)) throw new BenchConfigError(`${name}: each window must be 64K to 64M`);
  return values;
}

function cases(text: string, name: string): ReadonlySet<FilesCase> {
  const picked = new Set<FilesCase>();
  for (const word of text.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
    const value = FILES_CASES.find((c) => c === word);
    if (value === undefined) throw new BenchConfigError(`${name} takes a comma list of ${FILES_CASES.join(', ')}`);
    picked.add(value);
  }
  if (picked.size === 0) throw new BenchConfigError(`${name} must name at least one of ${FILES_CASES.join(', ')}`);
  return picked;
}

export function readFilesBenchConfig(env: NodeJS.ProcessEnv): FilesBenchConfig {
  const read = <T>(name: string, parse: (text: string, name: string) => T, fallback: T): T => {
    const text = env[name];
    return text === undefined || text.trim() === '' ? fallback : parse(text, name);
  };
  return {
    bytes: read('SALA_BENCH_FILES_BYTES', parseByteCount, 1024 ** 3),
    bigBytes: read('SALA_BENCH_FILES_BIG_BYTES', byteCountOrOff, 4 * 1024 ** 3),
    repeats: read('SALA_BENCH_FILES_REPEATS', positiveInt, 3),
    windows: read('SALA_BENCH_FILES_WINDOWS', byteCounts, [DEFAULT_WINDOW_BYTES, 1024 ** 2, 4 * 1024 ** 2]),
    cases: read('SALA_BENCH_FILES_CASES', cases, new Set(FILES_CASES)),
    workRoot: read('SALA_BENCH_FILES_DIR', (text) => text.trim(), tmpdir()),
    peerNodeArgs: (env['SALA_BENCH_FILES_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
  };
}
