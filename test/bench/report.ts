import { MIB } from './config.js';

export type Align = 'left' | 'right';

/** A plain-text table: columns padded to their widest cell, one space-separated rule under the header. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => {
        const width = widths[c] ?? cell.length;
        return align[c] === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatMiBps(bytesPerSecond: number): string {
  return `${(bytesPerSecond / MIB).toFixed(0)} MiB/s`;
}

export function formatUs(us: number): string {
  return `${us.toFixed(1)} µs`;
}

export function formatMs(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

export function formatMiB(bytes: number): string {
  return `${(bytes / MIB).toFixed(0)}`;
}

/** CPU time as a share of one core over the interval: 100% is one core flat out. */
export function formatCpu(cpuMs: number, wallMs: number): string {
  return wallMs > 0 ? `${Math.round((cpuMs / wallMs) * 100)}%` : '-';
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? upper) + upper) / 2;
}

/** The element whose key is the (lower) median: used to show the CPU and RSS of a representative run. */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export interface Target {
  /** `min`: the ratio must be at least `value` (throughput); `max`: at most (latency). */
  kind: 'min' | 'max';
  value: number;
}

export function verdict(ratio: number, target: Target | undefined): string {
  if (target === undefined) return 'info';
  const isMet = target.kind === 'min' ? ratio >= target.value : ratio <= target.value;
  return isMet ? 'PASS' : 'MISS';
}

export function formatTarget(target: Target | undefined): string {
  if (target === undefined) return '-';
  return `${target.kind === 'min' ? '>=' : '<='} ${target.value.toFixed(2)}x`;
}
