/**
 * `npm run bench:files`: file transfer between two Sala peers (issue 6), against a raw TCP copy of
 * the same file in the same run.
 *
 * This process runs a real RendezvousServer (cheap argon2, mDNS off, 127.0.0.1) and, for every
 * measurement, a fresh pair of processes (files-peer-process.ts): each peer is its own program, as
 * for users. Everything is on 127.0.0.1 and one disk (SALA_BENCH_FILES_DIR, default os.tmpdir()).
 *   1. throughput: a random SALA_BENCH_FILES_BYTES file. Sala: the sender's `sendFile()` (which
 *      hashes the whole file before it offers it) → the receiver auto-accepts into a temp downloads
 *      folder → its `file.received` (SHA-256 verified, renamed); the time with and without the
 *      pre-offer hash. Raw: createReadStream → socket → createWriteStream between two processes.
 *      Raw and each receiver credit window (SALA_BENCH_FILES_WINDOWS) SALA_BENCH_FILES_REPEATS
 *      times, interleaved; medians against the target (≥ 0.7× raw).
 *   2. chat: per window, chat round trips (send → 'delivered') between the same two peers, idle
 *      and while the file goes the same way: what a larger window costs interactive traffic.
 *   3. resume: the receiver is SIGKILLed at 50% and restarted at once with the same data dir and
 *      downloads folder: kill → ready → first file.progress, and the time lost in all.
 *   4. big: one transfer (and one raw copy) of SALA_BENCH_FILES_BIG_BYTES: peer RSS, sampled every
 *      50 ms in both processes, against 150 MiB and against the small file's (flat in file size).
 * Every copy is checked (size, and SHA-256 against the source) and deleted; the sources at the end.
 * Environment (all optional; byte counts take 1073741824, 1G, 256M or 64K):
 *   SALA_BENCH_FILES_BYTES      the file of cases 1 to 3                         (default 1G)
 *   SALA_BENCH_FILES_BIG_BYTES  the file of case 4; 0 or off skips it            (default 4G)
 *   SALA_BENCH_FILES_REPEATS    runs of raw and of each window                   (default 3)
 *   SALA_BENCH_FILES_WINDOWS    comma list of receiver windows, default first   (default 256K,1M,4M)
 *   SALA_BENCH_FILES_CASES      comma list of throughput, chat, resume, big      (default all four)
 *   SALA_BENCH_FILES_DIR        where the files go                               (default os.tmpdir())
 *   SALA_BENCH_FILES_NODE_ARGS  node flags for the peer processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
 * Quick run: SALA_BENCH_FILES_BYTES=128M SALA_BENCH_FILES_BIG_BYTES=off SALA_BENCH_FILES_REPEATS=1 npm run bench:files
 * Exit status: 0 whatever PASS/MISS says; 1 if a run broke; 2 for a bad environment variable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { initCrypto } from '../../common/index.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { BenchConfigError, MIB } from './config.js';
import type { FilesChild } from './files-child.js';
import { readFilesBenchConfig, type FilesBenchConfig } from './files-config.js';
import { filesReport, formatBytes, type FilesResults } from './files-report.js';
import { chatDuringTransfer, rawTransfer, resumedTransfer, salaTransfer, type FilesContext, type SourceFile } from './files-runs.js';
import { percentile } from './latency.js';
import { formatMiBps } from './report.js';
import { createRandomFile } from './temp-file.js';
import { runBench } from './bench-main.js';

const progress = (text: string): void => void process.stderr.write(`${text}\n`);
const rateText = (bytes: number, ms: number): string => `${formatMiBps(bytes / (ms / 1000))} (${(ms / 1000).toFixed(2)} s)`;

/** Even runs go in reverse order, so neither variant always runs first (warm caches, drifting load). */
function interleaved<T>(items: readonly T[], run: number): readonly T[] {
  return run % 2 === 1 ? items : [...items].reverse();
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // A JsonChild failure appends the child's stdout and stderr; its first line is enough here.
  return `${err.name}: ${err.message.split('\n')[0] ?? ''}`;
}

/** Runs one measurement; a broken one is recorded and the benchmark goes on (exit status 1). */
async function attempt<T>(results: FilesResults, label: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (err) {
    const message = describeError(err);
    results.broken.push({ label, message });
    progress(`  ${label}: BROKEN: ${message}`);
    return undefined;
  }
}

async function makeSource(ctx: FilesContext, name: string, bytes: number): Promise<SourceFile> {
  const path = join(ctx.workDir, name);
  const startedAt = performance.now();
  const sha256 = await createRandomFile(path, bytes);
  progress(`source ${path} (${formatBytes(bytes)}) written in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
  return { path, bytes, sha256 };
}

async function throughputCases(ctx: FilesContext, source: SourceFile, results: FilesResults): Promise<void> {
  const { repeats, windows } = ctx.config;
  progress(`throughput: ${formatBytes(source.bytes)}, raw TCP and windows ${windows.map(formatBytes).join(', ')}, ${repeats} run(s) each`);
  const variants: readonly (number | 'raw')[] = ['raw', ...windows];
  for (let run = 1; run <= repeats; run += 1) {
    for (const variant of interleaved(variants, run)) {
      if (variant === 'raw') {
        const r = await attempt(results, `raw TCP #${run}`, () => rawTransfer(ctx, source));
        if (r === undefined) continue;
        results.raw.push(r);
        progress(`  raw TCP #${run}: ${rateText(r.bytes, r.totalMs)}`);
        continue;
      }
      const label = `Sala window ${formatBytes(variant)} #${run}`;
      const r = await attempt(results, label, () => salaTransfer(ctx, source, variant));
      if (r === undefined) continue;
      results.sala.push(r);
      const rss = `RSS ${(r.sender.peakRssBytes / MIB).toFixed(0)}/${(r.receiver.peakRssBytes / MIB).toFixed(0)} MiB`;
      progress(`  ${label}: ${rateText(r.bytes, r.totalMs)}, hash ${(r.hashMs / 1000).toFixed(2)} s, ${rss}, SHA-256 matches`);
    }
  }
}

async function bigCase(ctx: FilesContext, results: FilesResults): Promise<void> {
  const source = await makeSource(ctx, 'big-source.bin', ctx.config.bigBytes);
  try {
    const windowBytes = ctx.config.windows[0] ?? 256 * 1024;
    const sala = await attempt(results, `Sala ${formatBytes(source.bytes)}`, () => salaTransfer(ctx, source, windowBytes));
    if (sala !== undefined) {
      results.bigSala.push(sala);
      const rss = `RSS peak ${(sala.sender.peakRssBytes / MIB).toFixed(0)}/${(sala.receiver.peakRssBytes / MIB).toFixed(0)} MiB`;
      progress(`  Sala ${formatBytes(source.bytes)}: ${rateText(sala.bytes, sala.totalMs)}, ${rss}`);
    }
    const raw = await attempt(results, `raw TCP ${formatBytes(source.bytes)}`, () => rawTransfer(ctx, source));
    if (raw !== undefined) {
      results.bigRaw.push(raw);
      progress(`  raw TCP ${formatBytes(source.bytes)}: ${rateText(raw.bytes, raw.totalMs)}`);
    }
  } finally {
    rmSync(source.path, { force: true });
  }
}

async function chatCases(ctx: FilesContext, source: SourceFile, results: FilesResults): Promise<void> {
  progress(`chat during a transfer: ${formatBytes(source.bytes)}, windows ${ctx.config.windows.map(formatBytes).join(', ')}`);
  for (const windowBytes of ctx.config.windows) {
    const r = await attempt(results, `chat, window ${formatBytes(windowBytes)}`, () => chatDuringTransfer(ctx, source, windowBytes));
    if (r === undefined) continue;
    results.chat.push(r);
    const p50 = (samples: readonly number[]): string => `${percentile(Float64Array.from(samples).sort(), 50).toFixed(1)} ms`;
    progress(`  window ${formatBytes(windowBytes)}: chat p50 idle ${p50(r.idleMs)}, during the transfer ${p50(r.loadedMs)}`);
  }
}

async function resumeCase(ctx: FilesContext, source: SourceFile, results: FilesResults): Promise<void> {
  progress(`resume: ${formatBytes(source.bytes)}, receiver SIGKILLed at 50% and restarted`);
  const r = await attempt(results, 'resume', () => resumedTransfer(ctx, source));
  if (r === undefined) return;
  results.resume.push(r);
  progress(
    `  killed at ${(r.killedAtBytes / MIB).toFixed(0)} MiB, ready ${(r.killToReadyMs / 1000).toFixed(2)} s later, ` +
      `progress ${(r.readyToProgressMs / 1000).toFixed(2)} s after ready (at ${(r.resumedAtBytes / MIB).toFixed(0)} MiB), total ${(r.totalMs / 1000).toFixed(2)} s`,
  );
}

async function main(): Promise<number> {
  let config: FilesBenchConfig;
  try {
    config = readFilesBenchConfig(process.env);
  } catch (err) {
    if (!(err instanceof BenchConfigError)) throw err;
    process.stderr.write(`bench:files: ${err.message}\n`);
    return 2;
  }
  await initCrypto();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const workDir = mkdtempSync(join(config.workRoot, 'sala-bench-files-'));
  const children = new Set<FilesChild>();
  // 'exit' also runs after an uncaught exception or Ctrl+C, so no multi-GiB file outlives a crash.
  process.once('exit', () => {
    for (const child of children) child.kill();
    rmSync(workDir, { recursive: true, force: true });
  });
  const onSignal = (): void => process.exit(130);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const server = await RendezvousServer.start({
    dataDir: join(workDir, 'server'),
    port: 0,
    adminPort: 0,
    isMdnsEnabled: false,
    passwordHashing: { opslimit: 1, memlimitBytes: 64 * 1024, workers: 1 },
  });
  const ctx: FilesContext = { config, server: { port: server.info.port, fingerprint: server.info.fingerprint }, workDir, children, pairs: 0 };
  const results: FilesResults = { sala: [], raw: [], bigSala: [], bigRaw: [], resume: [], chat: [], broken: [] };
  try {
    if (config.cases.has('throughput') || config.cases.has('chat') || config.cases.has('resume')) {
      const source = await makeSource(ctx, 'source.bin', config.bytes);
      if (config.cases.has('throughput')) await throughputCases(ctx, source, results);
      if (config.cases.has('chat')) await chatCases(ctx, source, results);
      if (config.cases.has('resume')) await resumeCase(ctx, source, results);
      rmSync(source.path, { force: true });
    }
    if (config.cases.has('big') && config.bigBytes > 0) await bigCase(ctx, results);
    const report = filesReport(config, results, startedAt, loadAtStart);
    process.stdout.write(report.text);
    return results.broken.length > 0 ? 1 : 0;
  } finally {
    for (const child of children) await child.stop();
    await server.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

runBench('bench:files', main);
