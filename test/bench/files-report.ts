import { cpus, loadavg, totalmem } from 'node:os';
import { GIB, MIB } from './config.js';
import type { FilesBenchConfig } from './files-config.js';
import type { MeterResult } from './files-protocol.js';
import { percentile } from './latency.js';
import type { ChatRun, RawRun, ResumeRun, SalaRun } from './files-runs.js';
import { formatCpu, formatMiB, formatMiBps, formatTable, formatTarget, median, medianBy, verdict, type Target } from './report.js';

/** Issue 6: file→file at least 0.7× the raw TCP copy; peer RSS at most 150 MiB, flat in file size. */
export const FILES_TARGET: Target = { kind: 'min', value: 0.7 };
export const RSS_LIMIT_BYTES = 150 * MIB;
/**
 * "Flat": the big file's peak RSS at most this much above the small file's, on each side. A fixed
 * allowance, not a share: GC timing moves a peak by ±10 MiB from run to run, while memory that grew
 * with the file would add hundreds of MiB over 4 GiB.
 */
export const FLAT_ALLOWANCE_BYTES = 16 * MIB;

export interface FilesResults {
  sala: SalaRun[];
  raw: RawRun[];
  bigSala: SalaRun[];
  bigRaw: RawRun[];
  resume: ResumeRun[];
  chat: ChatRun[];
  broken: { label: string; message: string }[];
}

export function formatBytes(bytes: number): string {
  if (bytes % GIB === 0) return `${bytes / GIB} GiB`;
  if (bytes >= MIB) return `${+(bytes / MIB).toFixed(1)} MiB`;
  return `${+(bytes / 1024).toFixed(1)} KiB`;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const rate = (bytes: number, ms: number): number => bytes / (ms / 1000);
const cpu2 = (s: MeterResult, r: MeterResult): string => `${formatCpu(s.cpuMs, s.wallMs)}/${formatCpu(r.cpuMs, r.wallMs)}`;
const rss2 = (s: MeterResult, r: MeterResult): string => `${formatMiB(s.peakRssBytes)}/${formatMiB(r.peakRssBytes)}`;

/** The main table: Sala per window against the raw copy (medians), with the target. */
function throughputTable(results: FilesResults, config: FilesBenchConfig): { table: string; misses: number } {
  const rows: string[][] = [];
  let misses = 0;
  const rawMs = median(results.raw.map((r) => r.totalMs));
  const rawRep = medianBy(results.raw, (r) => r.totalMs);
  const rawText = results.raw.length === 0 ? 'BROKEN' : formatMiBps(rate(config.bytes, rawMs));
  const add = (label: string, ms: number, target: Target | undefined, cells: [string, string, string], isReference: boolean): void => {
    const ratio = rate(config.bytes, ms) / rate(config.bytes, rawMs);
    const result = results.raw.length === 0 ? 'BROKEN' : verdict(ratio, target);
    if (result === 'MISS' && isReference) misses += 1;
    rows.push([label, rawText, formatMiBps(rate(config.bytes, ms)), seconds(ms), `${ratio.toFixed(2)}x`, formatTarget(target), result, ...cells]);
  };
  if (rawRep !== undefined) {
    rows.push(['raw TCP copy (baseline)', rawText, '-', seconds(rawMs), '-', '-', '-', cpu2(rawRep.sender, rawRep.receiver), rss2(rawRep.sender, rawRep.receiver), '-']);
  }
  for (const [index, windowBytes] of config.windows.entries()) {
    const runs = results.sala.filter((r) => r.windowBytes === windowBytes);
    const rep = medianBy(runs, (r) => r.totalMs);
    if (rep === undefined) {
      rows.push([`window ${formatBytes(windowBytes)}`, rawText, 'BROKEN', '-', '-', '-', 'BROKEN', '-', '-', '-']);
      continue;
    }
    const drops = runs.map((r) => r.linkDowns.length).join('/');
    const cells: [string, string, string] = [cpu2(rep.sender, rep.receiver), rss2(rep.sender, rep.receiver), drops];
    const isReference = index === 0;
    const name = `window ${formatBytes(windowBytes)}${isReference ? ' (default)' : ''}`;
    add(`${name}: sendFile -> file.received`, median(runs.map((r) => r.totalMs)), FILES_TARGET, cells, isReference);
    add(`${name}: without the pre-offer hash`, median(runs.map((r) => r.transferMs)), FILES_TARGET, cells, isReference);
    const hashMs = median(runs.map((r) => r.hashMs));
    rows.push([`${name}: pre-offer hash alone`, '-', formatMiBps(rate(config.bytes, hashMs)), seconds(hashMs), '-', '-', 'info', '-', '-', '-']);
  }
  const table = formatTable(
    ['Measurement (medians)', 'Raw TCP', 'Sala', 'Time', 'Ratio', 'Target', 'Result', 'CPU snd/rcv', 'RSS MiB snd/rcv', 'Link drops'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'left', 'left', 'right', 'right', 'right'],
  );
  return { table, misses };
}

/** `3 (SALA_E_RATE_LIMIT)`: how often the sender's link went down during a transfer, and why. */
function describeDrops(codes: readonly string[]): string {
  if (codes.length === 0) return '0';
  const distinct = [...new Set(codes)];
  return `${codes.length} (${distinct.join(', ')})`;
}

/** Every run, so the spread is visible. */
function runsTable(results: FilesResults): string {
  const rows: string[][] = [];
  const meters = (s: MeterResult, r: MeterResult): string[] => [
    `${(s.cpuMs / 1000).toFixed(1)}/${(r.cpuMs / 1000).toFixed(1)} s`,
    `${formatMiB(s.peakRssBytes)}/${formatMiB(s.medianRssBytes)}`,
    `${formatMiB(r.peakRssBytes)}/${formatMiB(r.medianRssBytes)}`,
  ];
  for (const r of [...results.raw, ...results.bigRaw]) {
    rows.push([`raw TCP, ${formatBytes(r.bytes)}`, r.load.toFixed(1), formatMiBps(rate(r.bytes, r.totalMs)), seconds(r.totalMs), '-', '-', '-', ...meters(r.sender, r.receiver)]);
  }
  for (const r of [...results.sala, ...results.bigSala]) {
    rows.push([
      `Sala, ${formatBytes(r.bytes)}, window ${formatBytes(r.windowBytes)}`,
      r.load.toFixed(1),
      formatMiBps(rate(r.bytes, r.totalMs)),
      seconds(r.totalMs),
      seconds(r.hashMs),
      `${((r.sentMs - r.totalMs) * 1000).toFixed(0)} µs`,
      describeDrops(r.linkDowns),
      ...meters(r.sender, r.receiver),
    ]);
  }
  return formatTable(
    ['Run', 'Load', 'Rate', 'Time', 'Hash', 'sent-rcvd', 'Link drops', 'CPU time snd/rcv', 'RSS MiB snd peak/med', 'RSS MiB rcv peak/med'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'left', 'right', 'right', 'right'],
  );
}

/** Peak and median RSS of both peers over the small and the big file, against 150 MiB and "flat". */
function memoryTable(results: FilesResults, config: FilesBenchConfig): { table: string; misses: number } {
  const reference = config.windows[0];
  const small = results.sala.filter((r) => r.windowBytes === reference);
  const rows: string[][] = [];
  let misses = 0;
  const side = (runs: readonly SalaRun[], pick: (r: SalaRun) => MeterResult): { peak: number; median: number } => ({
    peak: Math.max(...runs.map((r) => pick(r).peakRssBytes)),
    median: median(runs.map((r) => pick(r).medianRssBytes)),
  });
  const addRow = (label: string, runs: readonly SalaRun[]): { sender: number; receiver: number } | undefined => {
    if (runs.length === 0) return undefined;
    const s = side(runs, (r) => r.sender);
    const r = side(runs, (x) => x.receiver);
    const isMet = Math.max(s.peak, r.peak) <= RSS_LIMIT_BYTES;
    if (!isMet) misses += 1;
    rows.push([label, String(runs.length), `${formatMiB(s.peak)} / ${formatMiB(s.median)}`, `${formatMiB(r.peak)} / ${formatMiB(r.median)}`, '<= 150 MiB', isMet ? 'PASS' : 'MISS']);
    return { sender: s.peak, receiver: r.peak };
  };
  const smallPeaks = addRow(`Sala, ${formatBytes(config.bytes)}, window ${formatBytes(reference ?? 0)}`, small);
  const bigPeaks = addRow(`Sala, ${formatBytes(config.bigBytes)}, window ${formatBytes(reference ?? 0)}`, results.bigSala);
  for (const windowBytes of config.windows.slice(1)) addRow(`Sala, ${formatBytes(config.bytes)}, window ${formatBytes(windowBytes)}`, results.sala.filter((r) => r.windowBytes === windowBytes));
  for (const [label, runs] of [[`raw TCP, ${formatBytes(config.bytes)}`, results.raw], [`raw TCP, ${formatBytes(config.bigBytes)}`, results.bigRaw]] as const) {
    if (runs.length === 0) continue;
    const s = Math.max(...runs.map((r) => r.sender.peakRssBytes));
    const r = Math.max(...runs.map((x) => x.receiver.peakRssBytes));
    rows.push([label, String(runs.length), `${formatMiB(s)} / ${formatMiB(median(runs.map((x) => x.sender.medianRssBytes)))}`, `${formatMiB(r)} / ${formatMiB(median(runs.map((x) => x.receiver.medianRssBytes)))}`, '-', 'info']);
  }
  if (smallPeaks !== undefined && bigPeaks !== undefined) {
    const growth = (big: number, small_: number): string => `${big >= small_ ? '+' : ''}${formatMiB(big - small_)} MiB`;
    const isFlat = bigPeaks.sender <= smallPeaks.sender + FLAT_ALLOWANCE_BYTES && bigPeaks.receiver <= smallPeaks.receiver + FLAT_ALLOWANCE_BYTES;
    if (!isFlat) misses += 1;
    rows.push([
      `peak growth ${formatBytes(config.bytes)} -> ${formatBytes(config.bigBytes)}`,
      '-',
      growth(bigPeaks.sender, smallPeaks.sender),
      growth(bigPeaks.receiver, smallPeaks.receiver),
      `flat (<= +${formatMiB(FLAT_ALLOWANCE_BYTES)} MiB)`,
      isFlat ? 'PASS' : 'MISS',
    ]);
  }
  const table = formatTable(
    ['Peer RSS (sampled every 50 ms)', 'Runs', 'Sender MiB peak / median', 'Receiver MiB peak / median', 'Target', 'Result'],
    rows,
    ['left', 'right', 'right', 'right', 'left', 'left'],
  );
  return { table, misses };
}

function resumeTable(results: FilesResults, config: FilesBenchConfig): string {
  const reference = results.sala.filter((r) => r.windowBytes === config.windows[0]);
  const uninterruptedMs = median(reference.map((r) => r.totalMs));
  const rows = results.resume.map((r, i) => [
    String(i + 1),
    `${formatMiB(r.killedAtBytes)} MiB`,
    `${formatMiB(r.heldBytes)} MiB`,
    seconds(r.killToReadyMs),
    seconds(r.readyToLinkMs),
    seconds(r.readyToProgressMs),
    `${formatMiB(r.resumedAtBytes)} MiB`,
    seconds(r.totalMs),
    reference.length === 0 ? '-' : seconds(uninterruptedMs),
    reference.length === 0 ? '-' : seconds(r.totalMs - uninterruptedMs),
  ]);
  return formatTable(
    ['#', 'Killed at', '.part held', 'Kill->ready', 'Ready->link', 'Ready->progress', 'Resumed at', 'Total', 'Uninterrupted', 'Time lost'],
    rows,
    ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

/** Chat round trips idle and during a transfer, per window: the cost of a larger window. */
function chatTable(results: FilesResults): string {
  const ms = (sorted: Float64Array, p: number): string => `${percentile(sorted, p).toFixed(1)} ms`;
  const rows = results.chat.map((r) => {
    const idle = Float64Array.from(r.idleMs).sort();
    const loaded = Float64Array.from(r.loadedMs).sort();
    return [
      formatBytes(r.windowBytes),
      ms(idle, 50),
      ms(idle, 99),
      ms(loaded, 50),
      ms(loaded, 99),
      `${(percentile(loaded, 50) / percentile(idle, 50)).toFixed(1)}x`,
      r.isOverlapped ? 'yes' : 'NO (the file finished first)',
    ];
  });
  return formatTable(
    ['Window', 'Idle p50', 'Idle p99', 'During p50', 'During p99', 'p50 during/idle', 'All during the transfer'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
}

function machineLines(config: FilesBenchConfig, startedAt: Date, loadAtStart: number[]): string[] {
  const cpuList = cpus();
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  return [
    `Sala file transfer benchmark, started ${startedAt.toISOString()}, took ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`,
    `Node ${process.version} (OpenSSL ${process.versions.openssl ?? '?'}), ${process.platform} ${process.arch}; ` +
      `CPU: ${cpuList[0]?.model.trim() ?? 'unknown'} x ${cpuList.length}; RAM ${(totalmem() / GIB).toFixed(1)} GiB`,
    `Processes: this one (driver + rendezvous server, pid ${process.pid}); each run a fresh sender and receiver process; all on 127.0.0.1`,
    `Load average (1/5/15 min) at start ${load(loadAtStart)}, at end ${load(loadavg())}`,
    `Settings: ${formatBytes(config.bytes)} file, ${config.repeats} run(s) of raw TCP and of each window (${config.windows.map(formatBytes).join(', ')}), ` +
      `interleaved; big file ${config.bigBytes === 0 ? 'skipped' : formatBytes(config.bigBytes)}; files under ${config.workRoot}`,
    'Sala time = sendFile() called -> the receiver\'s file.received (hashed, verified, renamed); raw = connect -> copy closed',
    'CPU = user+system / wall (100% = one core); RSS = peak over the transfer, sampled every 50 ms; snd = sender, rcv = receiver; ' +
      'Link drops = the sender\'s link.down events during each run (the transfer then resumed on a new link)',
    'Every run: Load = 1-min load average at its start; CPU time = user+system seconds over the transfer; ' +
      'sent-rcvd = the sender\'s file.sent minus the receiver\'s file.received (checks the two clocks)',
  ];
}

export function filesReport(config: FilesBenchConfig, results: FilesResults, startedAt: Date, loadAtStart: number[]): { text: string; misses: number } {
  const throughput = throughputTable(results, config);
  const memory = memoryTable(results, config);
  const out = machineLines(config, startedAt, loadAtStart);
  if (results.sala.length + results.raw.length > 0) out.push('', throughput.table);
  if (results.sala.length + results.bigSala.length + results.raw.length + results.bigRaw.length > 0) out.push('', memory.table);
  if (results.chat.length > 0) {
    out.push('', `Chat round trip (send -> delivered, sender to receiver) idle and while a ${formatBytes(config.bytes)} file goes the same way:`, chatTable(results));
  }
  if (results.resume.length > 0) out.push('', `Resume (receiver SIGKILLed at 50%, restarted at once; ${formatBytes(config.bytes)}, window ${formatBytes(config.windows[0] ?? 0)}):`, resumeTable(results, config));
  if (results.sala.length + results.bigSala.length + results.raw.length + results.bigRaw.length > 0) out.push('', 'Every run:', runsTable(results));
  out.push('');
  const misses = throughput.misses + memory.misses;
  out.push(misses === 0 ? 'All measured targets met.' : `${misses} target(s) missed (reported; not a failure).`);
  if (results.broken.length > 0) {
    out.push('', `BROKEN: ${results.broken.length} run(s) did not complete correctly (exit status 1):`);
    for (const b of results.broken) out.push(`  ${b.label}: ${b.message}`);
  }
  return { text: `${out.join('\n')}\n`, misses };
}
