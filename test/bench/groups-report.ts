import { cpus } from 'node:os';
import { GROUP_TUNING_DEFAULTS } from '../../peer/groups/group-service-options.js';
import type { GroupsBenchConfig } from './groups-config.js';
import type { ReceiveResult, SendResult } from './groups-protocol.js';
import { percentile } from './latency.js';
import { formatCpu, formatMiB, formatMs, formatTable, median } from './report.js';

/** The targets: every message delivered once repair has run; p99 under 5 ms on a clean LAN. */
export const DELIVERED_TARGET = 1;
export const P99_TARGET_MS = 5;

export interface RunInfo {
  startedAt: Date;
  loadAtStart: number[];
  loadAtEnd?: number[];
  commit: string;
}

export interface PhaseResult {
  label: string;
  lossPercent: number;
  /** Where the loss was made: a tc filter in the kernel, or (simulated) in each receiver's socket. */
  lossMode: 'none' | 'kernel' | 'socket';
  send: SendResult;
  received: ReceiveResult[];
  /** Per receiver: datagrams the kernel dropped because the socket's receive buffer was full. */
  rcvbufErrors: number[];
}

const share = (part: number, whole: number): string => `${((part / Math.max(1, whole)) * 100).toFixed(2)}%`;
const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
const sorted = (samplesUs: readonly number[]): Float64Array => Float64Array.from(samplesUs).sort();
const msAt = (samples: Float64Array, p: number): string => (samples.length === 0 ? '-' : formatMs(percentile(samples, p) / 1000));
const cpuShare = (r: { use: { cpuMs: number; wallMs: number } }): number => r.use.cpuMs / Math.max(1, r.use.wallMs);

function pooled(phase: PhaseResult, pick: (r: ReceiveResult) => number[]): Float64Array {
  return sorted(phase.received.flatMap(pick));
}

/** The worst receiver's delivered share after repair. */
function worstDelivered(phase: PhaseResult): number {
  return Math.min(...phase.received.map((r) => r.delivered / Math.max(1, r.count)));
}

function perReceiverTable(phases: readonly PhaseResult[]): string {
  const rows = phases.flatMap((phase) =>
    phase.received.map((r, i) => {
      const latency = sorted(r.latencyUs);
      return [
        phase.label,
        String(i + 1),
        share(r.viaData, r.count),
        share(r.delivered, r.count),
        msAt(latency, 50),
        msAt(latency, 99),
        msAt(latency, 100),
        formatCpu(r.use.cpuMs, r.use.wallMs),
        formatMiB(r.use.peakRssBytes),
        String(r.counters.nacksSent),
        String(r.counters.repairsReceived),
        String(r.counters.seqsLost),
        String(phase.rcvbufErrors[i] ?? 0),
        String(r.counters.rateLimited + r.duplicates),
      ];
    }),
  );
  const headers = ['Phase', 'Rcv', 'Before repair', 'After repair', 'p50', 'p99', 'max', 'CPU', 'RSS MiB', 'NACKs', 'REPAIRs in', 'Lost', 'Rcvbuf drops', 'Refused+dup'];
  return formatTable(headers, rows, ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right']);
}

function summaryTable(phases: readonly PhaseResult[]): string {
  const clean = phases.find((p) => p.lossPercent === 0);
  const row = (name: string, cell: (p: PhaseResult) => string, target = '-', result = 'info'): string[] => [name, ...phases.map(cell), target, result];
  const deliveredOk = phases.every((p) => worstDelivered(p) >= DELIVERED_TARGET);
  const cleanP99Ms = clean === undefined ? Number.NaN : percentile(pooled(clean, (r) => r.latencyUs), 99) / 1000;
  const send = (p: PhaseResult): SendResult => p.send;
  const rows = [
    row('delivered before repair, worst / mean receiver', (p) => `${share(Math.min(...p.received.map((r) => r.viaData)), p.send.sent)} / ${share(sum(p.received.map((r) => r.viaData)), p.send.sent * p.received.length)}`),
    row('delivered after repair, worst receiver', (p) => share(Math.min(...p.received.map((r) => r.delivered)), p.send.sent), '100%', deliveredOk ? 'PASS' : 'MISS'),
    row('latency p50, all receivers', (p) => msAt(pooled(p, (r) => r.latencyUs), 50)),
    row('latency p99, all receivers', (p) => msAt(pooled(p, (r) => r.latencyUs), 99), `< ${P99_TARGET_MS} ms (clean)`, cleanP99Ms < P99_TARGET_MS ? 'PASS' : 'MISS'),
    row('latency max', (p) => msAt(pooled(p, (r) => r.latencyUs), 100)),
    row('  send -> receiver socket, p50 / p99', (p) => `${msAt(pooled(p, (r) => r.toSocketUs), 50)} / ${msAt(pooled(p, (r) => r.toSocketUs), 99)}`),
    row('  socket -> group.message, p50 / p99', (p) => `${msAt(pooled(p, (r) => r.inServiceUs), 50)} / ${msAt(pooled(p, (r) => r.inServiceUs), 99)}`),
    row('CPU per receiver, median / max (1 core = 100%)', (p) => `${Math.round(median(p.received.map(cpuShare)) * 100)}% / ${Math.round(Math.max(...p.received.map(cpuShare)) * 100)}%`),
    row('receiver CPU per datagram in, median', (p) => `${median(p.received.map((r) => (r.use.cpuMs * 1000) / Math.max(1, r.counters.datagramsReceived))).toFixed(0)} µs`),
    row('receiver RSS peak, max', (p) => `${formatMiB(Math.max(...p.received.map((r) => r.use.peakRssBytes)))} MiB`),
    row('sender CPU / RSS peak', (p) => `${formatCpu(send(p).use.cpuMs, send(p).use.wallMs)} / ${formatMiB(send(p).use.peakRssBytes)} MiB`),
    row('sender send() p50 / p99', (p) => `${msAt(sorted(send(p).sendCallUs), 50)} / ${msAt(sorted(send(p).sendCallUs), 99)}`),
    row('sent (refused) in s', (p) => `${send(p).sent} (${send(p).refused}) in ${send(p).seconds.toFixed(2)}`),
    row('NACKs sent, all receivers', (p) => String(sum(p.received.map((r) => r.counters.nacksSent)))),
    row('REPAIRs sent by the sender', (p) => String(send(p).counters.repairsSent)),
    row('seqs given up, all receivers', (p) => String(sum(p.received.map((r) => r.counters.seqsLost)))),
    row('kernel receive-buffer drops, all', (p) => String(sum(p.rcvbufErrors))),
  ];
  return formatTable(['Measurement', ...phases.map((p) => p.label), 'Target', 'Result'], rows, ['left', ...phases.map(() => 'right' as const), 'left', 'left']);
}

function verdictLines(phases: readonly PhaseResult[]): string[] {
  const clean = phases.find((p) => p.lossPercent === 0);
  const delivered = phases.map((p) => `${p.label} ${share(Math.min(...p.received.map((r) => r.delivered)), p.send.sent)}`).join(', ');
  const p99Ms = clean === undefined ? Number.NaN : percentile(pooled(clean, (r) => r.latencyUs), 99) / 1000;
  return [
    `${phases.every((p) => worstDelivered(p) >= DELIVERED_TARGET) ? 'PASS' : 'MISS'}  delivered after repair = 100% at every receiver (worst: ${delivered})`,
    `${p99Ms < P99_TARGET_MS ? 'PASS' : 'MISS'}  latency p99 < ${P99_TARGET_MS} ms on the clean LAN (${Number.isNaN(p99Ms) ? 'not measured' : formatMs(p99Ms)})`,
  ];
}

function tuningLine(config: GroupsBenchConfig): string {
  const changed = Object.entries(config.tuning).map(([name, value]) => {
    const fallback = GROUP_TUNING_DEFAULTS[name as keyof typeof GROUP_TUNING_DEFAULTS];
    return `${name} ${String(value)} (default ${String(fallback)})`;
  });
  return `GroupService tuning of every member: ${changed.join(', ')}.`;
}

export function groupsReport(config: GroupsBenchConfig, phases: readonly PhaseResult[], info: RunInfo, broken: readonly string[]): string {
  const load = (l: number[] | undefined): string => (l === undefined ? '-' : l.map((x) => x.toFixed(2)).join(' '));
  const lossPhase = phases.find((p) => p.lossPercent > 0);
  const lossHow =
    lossPhase === undefined
      ? 'no loss phase'
      : lossPhase.lossMode === 'kernel'
        ? `${lossPhase.lossPercent}% of UDP frames to each receiver dropped in the kernel (tc bpf filter on the bridge side of its veth)`
        : `${lossPhase.lossPercent}% loss SIMULATED in each receiver's socket wrapper (tc could not drop frames here)`;
  const lines = [
    '',
    `Group chat over multicast (npm run bench:groups), started ${info.startedAt.toISOString()}, commit ${info.commit}`,
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}; load average at start ${load(info.loadAtStart)}, at end ${load(info.loadAtEnd)}`,
    `Simulated LAN: 1 server host, 1 sender, ${config.receivers} receivers; ${config.perSecond} msg/s for ${config.seconds} s of ${config.textBytes}-byte texts after ${config.warmup} warm-up messages; ${lossHow}.`,
    tuningLine(config),
    ...(phases.length === 0 ? [] : ['', perReceiverTable(phases), '', summaryTable(phases), '', ...verdictLines(phases)]),
    ...broken.map((message) => `BROKEN  ${message.split('\n')[0] ?? message}`),
    '',
  ];
  return lines.join('\n');
}
