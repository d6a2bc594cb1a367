/**
 * `npm run bench`: Sala's secure channel against raw TCP, measured side by side in one run.
 *
 * Two processes (the target machine has two cores): this one is the sender and Noise initiator,
 * `receiver.js` (a child it starts) the receiver and responder. Everything runs on 127.0.0.1.
 *   1. memory->discard: SALA_BENCH_BYTES in 64 KiB writes that honour write()/'drain', raw
 *      net.Socket vs SecureChannel with the node:crypto AEAD, and with the libsodium one.
 *   2. file->file: a random temp file (under os.tmpdir(), deleted at the end) streamed with
 *      stream.pipeline into a raw socket vs a SecureChannel (one message per 64 KiB read), and
 *      piped into a file on the other side; the copy's size and SHA-256 are checked.
 *   3. ping-pong: 100-byte messages, one in flight; p50/p99 round trip for raw TCP (Nagle off),
 *      SecureChannel Buffers and MessageChannel.ping.
 * It prints a table with the ratios to raw TCP and PASS/MISS against the targets.
 *
 * Environment (all optional; byte counts take 1073741824, 1G, 256M or 64K):
 *   SALA_BENCH_BYTES         bytes per throughput transfer            (default 1G)
 *   SALA_BENCH_CHUNK_BYTES   bytes per write / channel message        (default 64K, at most 131055)
 *   SALA_BENCH_PINGS         measured round trips per ping run        (default 10000)
 *   SALA_BENCH_WARMUP_PINGS  unmeasured round trips before those      (default 1000)
 *   SALA_BENCH_PING_BYTES    bytes per ping                           (default 100)
 *   SALA_BENCH_REPEATS       runs of every case, interleaved          (default 3)
 *   SALA_BENCH_CASES         comma list of mem, file, ping            (default all three)
 *   SALA_BENCH_AEADS         comma list of node, libsodium: the AEADs of memory->discard (default both)
 * Quick run: SALA_BENCH_BYTES=64M SALA_BENCH_PINGS=2000 SALA_BENCH_REPEATS=1 npm run bench
 * Profile both processes (node flags pass on to the receiver; one .cpuprofile per process):
 *   SALA_BENCH_CASES=mem SALA_BENCH_REPEATS=1 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/test/bench/run.js
 *
 * Exit status: 0 whatever PASS/MISS says; 1 if a transfer was broken (wrong size, hash, echo) or
 * anything else failed; 2 for a bad environment variable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStaticKeyPair, initCrypto, type KeyPair } from '../../common/index.js';
import { BenchConfigError, readBenchConfig, type BenchConfig } from './config.js';
import { percentile, pingPong } from './latency.js';
import type { AeadName, Transport } from './protocol.js';
import { ReceiverProcess } from './receiver-process.js';
import { formatMiBps, formatUs } from './report.js';
import {
  machineLines,
  runLabel,
  runsTable,
  summaryTable,
  type BenchResults,
  type BrokenRun,
  type ThroughputRun,
} from './summary.js';
import { createRandomFile } from './temp-file.js';
import { fileToFile, memoryToDiscard } from './throughput.js';
import { runBench } from './bench-main.js';

const progress = (text: string): void => void process.stderr.write(`${text}\n`);

/** Even runs go in reverse order, so neither side always runs first (warm caches, drifting load). */
function interleaved<T>(items: readonly T[], run: number): readonly T[] {
  return run % 2 === 1 ? items : [...items].reverse();
}

interface Context {
  config: BenchConfig;
  receiver: ReceiverProcess;
  staticKeyPair: KeyPair;
  workDir: string;
  results: BenchResults;
}

const BULK_VARIANTS: readonly { transport: 'raw' | 'secure'; aead: AeadName }[] = [
  { transport: 'raw', aead: 'node' },
  { transport: 'secure', aead: 'node' },
  { transport: 'secure', aead: 'libsodium' },
];

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = 'code' in err ? ` [${String(err.code)}]` : '';
  // A JsonChild failure appends the receiver's stdout and stderr; its first line is enough here.
  return `${err.name}${code}: ${err.message.split('\n')[0] ?? ''}`;
}

/**
 * Runs one measurement. A broken one (wrong size or hash, lost echo, channel error, timeout) is
 * recorded and the benchmark goes on, so one failure does not hide the other figures; the exit
 * status is then 1.
 */
async function attempt<T>(ctx: Context, run: Omit<BrokenRun, 'message'>, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (err) {
    const message = describeError(err);
    ctx.results.broken.push({ ...run, message });
    progress(`  ${runLabel(run.group, run.transport, run.aead)} #${run.run}: BROKEN: ${message}`);
    return undefined;
  }
}

function describeRun(r: ThroughputRun): string {
  const { bytes, seconds } = r.result;
  return `  ${runLabel(r.bulkCase, r.transport, r.aead)} #${r.run}: ${formatMiBps(bytes / seconds)} (${seconds.toFixed(2)} s)`;
}

async function memoryCases(ctx: Context): Promise<void> {
  const { config, receiver, staticKeyPair } = ctx;
  progress(`memory->discard, ${config.transferBytes} bytes per transfer`);
  const variants = BULK_VARIANTS.filter((v) => v.transport === 'raw' || config.aeads.has(v.aead));
  for (let run = 1; run <= config.repeats; run += 1) {
    for (const { transport, aead } of interleaved(variants, run)) {
      const spec = { transport, aead, bytes: config.transferBytes, chunkBytes: config.chunkBytes };
      const result = await attempt(ctx, { group: 'mem', transport, aead, run }, () =>
        memoryToDiscard(receiver, spec, staticKeyPair),
      );
      if (result === undefined) continue;
      const entry: ThroughputRun = { bulkCase: 'mem', transport, aead, run, result };
      ctx.results.throughput.push(entry);
      progress(describeRun(entry));
    }
  }
}

async function fileCases(ctx: Context): Promise<void> {
  const { config, receiver, staticKeyPair } = ctx;
  const source = join(ctx.workDir, 'source.bin');
  const startedAt = performance.now();
  const sourceSha256 = await createRandomFile(source, config.transferBytes);
  progress(`file->file, source ${source} written in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
  // node:crypto only: memory->discard already shows what libsodium costs.
  const variants = BULK_VARIANTS.filter((v) => v.aead === 'node');
  let copies = 0;
  for (let run = 1; run <= config.repeats; run += 1) {
    for (const { transport, aead } of interleaved(variants, run)) {
      copies += 1;
      const destination = join(ctx.workDir, `received-${copies}.bin`);
      const { transferBytes: bytes, chunkBytes } = config;
      const spec = { transport, aead, bytes, chunkBytes, source, sourceSha256, destination };
      const result = await attempt(ctx, { group: 'file', transport, aead, run }, () =>
        fileToFile(receiver, spec, staticKeyPair),
      );
      if (result === undefined) continue;
      const entry: ThroughputRun = { bulkCase: 'file', transport, aead, run, result };
      ctx.results.throughput.push(entry);
      progress(`${describeRun(entry)}, size and SHA-256 match`);
    }
  }
  rmSync(source, { force: true });
}

async function pingCases(ctx: Context): Promise<void> {
  const { config, receiver, staticKeyPair } = ctx;
  const { pings, warmupPings, pingBytes } = config;
  progress(`ping-pong, ${pings} x ${pingBytes} B after ${warmupPings} warm-up`);
  const transports: readonly Transport[] = ['raw', 'secure', 'message'];
  for (let run = 1; run <= config.repeats; run += 1) {
    for (const transport of interleaved(transports, run)) {
      const spec = { transport, aead: 'node' as const, pings, warmupPings, pingBytes };
      const result = await attempt(ctx, { group: 'ping', transport, aead: 'node', run }, () =>
        pingPong(receiver, spec, staticKeyPair),
      );
      if (result === undefined) continue;
      ctx.results.ping.push({ transport, run, result });
      const s = result.samplesUs;
      const figures = `p50 ${formatUs(percentile(s, 50))}, p99 ${formatUs(percentile(s, 99))}`;
      progress(`  ${runLabel('ping', transport, 'node')} #${run}: ${figures}`);
    }
  }
}

function report(ctx: Context, startedAt: Date, loadAtStart: number[]): string {
  const { table, misses } = summaryTable(ctx.results);
  const { broken } = ctx.results;
  const out = [...machineLines(ctx.config, ctx.receiver.pid, startedAt, loadAtStart), '', table, '', 'Every run:', runsTable(ctx.results), ''];
  out.push(misses === 0 ? 'All measured targets met.' : `${misses} target(s) missed (reported; not a failure).`);
  if (broken.length > 0) {
    out.push('', `BROKEN: ${broken.length} run(s) did not complete correctly (exit status 1):`);
    for (const b of broken) out.push(`  ${runLabel(b.group, b.transport, b.aead)} #${b.run}: ${b.message}`);
  }
  return `${out.join('\n')}\n`;
}

async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = readBenchConfig(process.env);
  } catch (err) {
    if (!(err instanceof BenchConfigError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return 2;
  }
  await initCrypto();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'sala-bench-'));
  const receiver = new ReceiverProcess();
  // 'exit' also runs after an uncaught exception or Ctrl+C, so no 1 GiB file outlives a crash.
  process.once('exit', () => {
    receiver.kill();
    rmSync(workDir, { recursive: true, force: true });
  });
  const onSignal = (): void => process.exit(130);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: BenchResults = { throughput: [], ping: [], broken: [] };
  const ctx: Context = { config, receiver, staticKeyPair: generateStaticKeyPair(), workDir, results };
  try {
    if (config.cases.has('mem')) await memoryCases(ctx);
    if (config.cases.has('file')) await fileCases(ctx);
    if (config.cases.has('ping')) await pingCases(ctx);
    process.stdout.write(report(ctx, startedAt, loadAtStart));
    return results.broken.length > 0 ? 1 : 0;
  } finally {
    await receiver.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

runBench('bench', main);
