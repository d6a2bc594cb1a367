import { cpus, loadavg, totalmem } from 'node:os';
import { GIB, MIB, type BenchConfig } from './config.js';
import { percentile, type LatencyResult } from './latency.js';
import type { AeadName, ReceiverStats, Transport } from './protocol.js';
import {
  formatCpu,
  formatMiB,
  formatMiBps,
  formatMs,
  formatTable,
  formatTarget,
  formatUs,
  median,
  medianBy,
  verdict,
  type Target,
} from './report.js';
import type { ResourceUse } from './resources.js';
import type { TransferResult } from './throughput.js';

export type BulkCase = 'mem' | 'file';

export interface ThroughputRun {
  bulkCase: BulkCase;
  transport: 'raw' | 'secure';
  aead: AeadName;
  run: number;
  result: TransferResult;
}

export interface PingRun {
  transport: Transport;
  run: number;
  result: LatencyResult;
}

/** A run that did not complete: wrong size or hash, a lost echo, a channel error, a timeout. */
export interface BrokenRun {
  group: BulkCase | 'ping';
  transport: Transport;
  aead: AeadName;
  run: number;
  message: string;
}

export interface BenchResults {
  throughput: ThroughputRun[];
  ping: PingRun[];
  broken: BrokenRun[];
}

/** The issue's targets: bulk at least 0.7x raw TCP, ping p50 at most 1.3x raw. */
export const BULK_TARGET: Target = { kind: 'min', value: 0.7 };
export const PING_P50_TARGET: Target = { kind: 'max', value: 1.3 };

const CASE_LABEL: Record<BulkCase, string> = { mem: 'memory->discard', file: 'file->file' };
const AEAD_LABEL: Record<AeadName, string> = { node: 'default AEAD', libsodium: 'libsodium only' };
const TRANSPORT_LABEL: Record<Transport, string> = {
  raw: 'raw TCP',
  secure: 'SecureChannel',
  message: 'MessageChannel.ping',
};

export function runLabel(group: BulkCase | 'ping', transport: Transport, aead: AeadName): string {
  if (group === 'ping') return `ping, ${TRANSPORT_LABEL[transport]}`;
  return `${CASE_LABEL[group]}, ${transport === 'raw' ? 'raw TCP' : `secure (${AEAD_LABEL[aead]})`}`;
}

function rate(run: ThroughputRun): number {
  return run.result.bytes / run.result.seconds;
}

/** "CPU snd/rcv" and "RSS snd/rcv" cells. */
function resourceCells(r: { sender: ResourceUse; receiver: ReceiverStats }): [string, string] {
  const { sender, receiver } = r;
  return [
    `${formatCpu(sender.cpuMs, sender.wallMs)}/${formatCpu(receiver.cpuMs, receiver.wallMs)}`,
    `${formatMiB(sender.peakRssBytes)}/${formatMiB(receiver.peakRssBytes)}`,
  ];
}

/** All runs' ping samples in one sorted array: percentiles over every measured round trip. */
function pooled(runs: readonly PingRun[]): Float64Array {
  const all = new Float64Array(runs.reduce((n, r) => n + r.result.samplesUs.length, 0));
  let offset = 0;
  for (const r of runs) {
    all.set(r.result.samplesUs, offset);
    offset += r.result.samplesUs.length;
  }
  return all.sort();
}

class SummaryRows {
  readonly rows: string[][] = [];
  misses = 0;

  add(label: string, raw: string, secure: string, ratio: number, target: Target | undefined, cells: [string, string]): void {
    const result = verdict(ratio, target);
    if (result === 'MISS') this.misses += 1;
    this.rows.push([label, raw, secure, `${ratio.toFixed(2)}x`, formatTarget(target), result, ...cells]);
  }

  addBroken(label: string, raw: string, secure: string, brokenRuns: number): void {
    this.rows.push([label, raw, secure, '-', '-', `BROKEN (${brokenRuns} run${brokenRuns === 1 ? '' : 's'})`, '-', '-']);
  }
}

function addThroughputRows(results: BenchResults, out: SummaryRows): void {
  const brokenRuns = (group: BulkCase, transport: Transport, aead?: AeadName): number =>
    results.broken.filter((b) => b.group === group && b.transport === transport && (aead === undefined || b.aead === aead))
      .length;
  for (const bulkCase of ['mem', 'file'] as const) {
    const runs = results.throughput.filter((r) => r.bulkCase === bulkCase);
    const raw = runs.filter((r) => r.transport === 'raw');
    const rawRate = median(raw.map(rate));
    const rawText = raw.length === 0 ? 'BROKEN' : formatMiBps(rawRate);
    for (const aead of ['node', 'libsodium'] as const) {
      const secure = runs.filter((r) => r.transport === 'secure' && r.aead === aead);
      const secureRate = median(secure.map(rate));
      const broken = brokenRuns(bulkCase, 'raw') + brokenRuns(bulkCase, 'secure', aead);
      const representative = medianBy(secure, rate);
      const label = `${CASE_LABEL[bulkCase]}, ${AEAD_LABEL[aead]}`;
      if (representative === undefined && brokenRuns(bulkCase, 'secure', aead) === 0) continue; // not measured
      if (representative === undefined || raw.length === 0 || broken > 0) {
        out.addBroken(label, rawText, secure.length === 0 ? 'BROKEN' : formatMiBps(secureRate), broken);
        continue;
      }
      // node:crypto is the product's path; libsodium is shown to explain why it is not the default.
      const target = aead === 'node' ? BULK_TARGET : undefined;
      out.add(label, rawText, formatMiBps(secureRate), secureRate / rawRate, target, resourceCells(representative.result));
    }
  }
}

function addPingRows(results: BenchResults, out: SummaryRows): void {
  const rawRuns = results.ping.filter((r) => r.transport === 'raw');
  const raw = pooled(rawRuns);
  const rawBroken = results.broken.filter((b) => b.group === 'ping' && b.transport === 'raw').length;
  for (const transport of ['secure', 'message'] as const) {
    const runs = results.ping.filter((r) => r.transport === transport);
    const broken = rawBroken + results.broken.filter((b) => b.group === 'ping' && b.transport === transport).length;
    const representative = medianBy(runs, (r) => percentile(r.result.samplesUs, 50));
    if (representative === undefined && broken === 0) continue; // not measured
    if (representative === undefined || rawRuns.length === 0 || broken > 0) {
      const rawText = rawRuns.length === 0 ? 'BROKEN' : formatUs(percentile(raw, 50));
      const secureText = runs.length === 0 ? 'BROKEN' : formatUs(percentile(pooled(runs), 50));
      out.addBroken(`ping p50, ${TRANSPORT_LABEL[transport]}`, rawText, secureText, broken);
      continue;
    }
    const secure = pooled(runs);
    const cells = resourceCells(representative.result);
    for (const p of [50, 99] as const) {
      const rawUs = percentile(raw, p);
      const secureUs = percentile(secure, p);
      const target = p === 50 ? PING_P50_TARGET : undefined;
      out.add(`ping p${p}, ${TRANSPORT_LABEL[transport]}`, formatUs(rawUs), formatUs(secureUs), secureUs / rawUs, target, cells);
    }
  }
  const secureRuns = results.ping.filter((r) => r.transport === 'secure');
  if (secureRuns.length > 0 && rawRuns.length > 0) {
    const rawMs = median(rawRuns.map((r) => r.result.connectMs));
    const secureMs = median(secureRuns.map((r) => r.result.connectMs));
    out.add('connect (+ Noise XX handshake)', formatMs(rawMs), formatMs(secureMs), secureMs / rawMs, undefined, ['-', '-']);
  }
}

/** The main table: one row per measurement, raw baseline, ratio, target and PASS/MISS. */
export function summaryTable(results: BenchResults): { table: string; misses: number } {
  const out = new SummaryRows();
  addThroughputRows(results, out);
  addPingRows(results, out);
  const table = formatTable(
    ['Measurement', 'Raw TCP', 'Secure', 'Ratio', 'Target', 'Result', 'CPU snd/rcv', 'RSS MiB snd/rcv'],
    out.rows,
    ['left', 'right', 'right', 'right', 'left', 'left', 'right', 'right'],
  );
  return { table, misses: out.misses };
}

/** Every run, so the spread between runs is visible; broken runs are listed last. */
export function runsTable(results: BenchResults): string {
  const rows: string[][] = [];
  for (const r of results.throughput) {
    const cells = resourceCells(r.result);
    const seconds = `${r.result.seconds.toFixed(2)} s`;
    rows.push([runLabel(r.bulkCase, r.transport, r.aead), String(r.run), formatMiBps(rate(r)), seconds, ...cells]);
  }
  for (const r of results.ping) {
    const s = r.result.samplesUs;
    const value = `p50 ${formatUs(percentile(s, 50))}, p99 ${formatUs(percentile(s, 99))}`;
    rows.push([runLabel('ping', r.transport, 'node'), String(r.run), value, `${s.length} pings`, ...resourceCells(r.result)]);
  }
  for (const b of results.broken) rows.push([runLabel(b.group, b.transport, b.aead), String(b.run), 'BROKEN', '-', '-', '-']);
  return formatTable(
    ['Run', '#', 'Result', 'Size', 'CPU snd/rcv', 'RSS MiB snd/rcv'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right'],
  );
}

/** The header: date, machine, processes, load, settings and how to read the columns. */
export function machineLines(
  config: BenchConfig,
  receiverPid: number | undefined,
  startedAt: Date,
  loadAtStart: number[],
): string[] {
  const cpuList = cpus();
  const model = cpuList[0]?.model.trim() ?? 'unknown';
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  const bytes = config.transferBytes;
  const size = bytes % GIB === 0 ? `${bytes / GIB} GiB` : `${(bytes / MIB).toFixed(1)} MiB`;
  return [
    `Sala benchmark, started ${startedAt.toISOString()}, took ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`,
    `Node ${process.version} (OpenSSL ${process.versions.openssl ?? '?'}), ${process.platform} ${process.arch}; ` +
      `CPU: ${model} x ${cpuList.length}; RAM ${(totalmem() / GIB).toFixed(1)} GiB`,
    `Processes: sender/initiator pid ${process.pid}, receiver/responder pid ${receiverPid ?? '?'}; all traffic on 127.0.0.1`,
    `Load average (1/5/15 min) at start ${load(loadAtStart)}, at end ${load(loadavg())}`,
    `Settings: ${size} per transfer in ${config.chunkBytes}-byte writes; ` +
      `${config.pings} pings of ${config.pingBytes} B after ${config.warmupPings} warm-up; ` +
      `${config.repeats} run(s) of each case, interleaved`,
    'Throughput = median run; latency = percentiles over all runs\' pings; ratio = secure / raw',
    'CPU = user+system time / wall time (100% = one core); RSS = peak during the run; ' +
      'snd = sender/initiator, rcv = receiver/responder',
  ];
}
