/**
 * Pure text helpers for the chat terminal: making untrusted text safe to show, progress rows and
 * tone colours. Nothing here writes to a stream or keeps state.
 */

import { formatBytes } from '../byte-size.js';

/** Control Sequence Introducer: the prefix of every cursor, erase and colour escape used here. */
export const CSI = '\u001b[';

/**
 * Makes untrusted text (messages, file names from other peers) safe to write to a terminal: C0
 * controls, DEL and C1 controls become visible symbols, so a peer cannot move the cursor, recolour
 * the screen, set the title or reach the clipboard with escape sequences. Keeps `\n` and `\t`
 * unless `isSingleLine`.
 */
export function sanitizeForTerminal(text: string, options: { isSingleLine?: boolean } = {}): string {
  const isSingleLine = options.isSingleLine === true;
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/gu, (ch) => {
    const code = ch.charCodeAt(0);
    if (code === 0x0a) return isSingleLine ? '\u2424' : ch;
    if (code === 0x09) return isSingleLine ? ' ' : ch;
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // Control Pictures: ␛ for ESC
    if (code === 0x7f) return '\u2421';
    return '\ufffd';
  });
}

/** `[#####-----] 48%`: `width` cells between the brackets; the percentage is floored. */
export function renderProgressBar(bytes: number, total: number, width: number): string {
  const cells = Number.isFinite(width) ? Math.max(1, Math.floor(width)) : 1;
  const ratio = progressRatio(bytes, total);
  const filled = Math.floor(ratio * cells);
  const percent = Math.floor(ratio * 100);
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}] ${percent}%`;
}

function progressRatio(bytes: number, total: number): number {
  if (!Number.isFinite(total) || total <= 0) return 1; // an empty file is complete at once
  if (!Number.isFinite(bytes) || bytes <= 0) return 0;
  return Math.min(bytes / total, 1);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `1.2/2.5 MiB`: both numbers in the unit that suits `total`. */
export function formatByteProgress(bytes: number, total: number): string {
  const safeTotal = Number.isFinite(total) && total > 0 ? total : 0;
  const safeBytes = Number.isFinite(bytes) && bytes > 0 ? Math.min(bytes, safeTotal) : 0;
  let exponent = 0;
  while (exponent < BYTE_UNITS.length - 1 && safeTotal >= 1024 ** (exponent + 1)) exponent += 1;
  const unit = BYTE_UNITS[exponent] ?? 'B';
  if (exponent === 0) return `${safeBytes}/${safeTotal} B`;
  const scale = 1024 ** exponent;
  return `${(safeBytes / scale).toFixed(1)}/${(safeTotal / scale).toFixed(1)} ${unit}`;
}

/**
 * One progress row, at most `columns` characters: `[#####-----] 48% report.pdf 1.2/2.5 MiB`.
 * The label is shortened with "…" first; it is sanitised here, so callers pass names as received.
 */
export function formatProgressLine(label: string, bytes: number, total: number, columns: number): string {
  const maxChars = Math.max(10, Math.floor(columns));
  const bar = renderProgressBar(bytes, total, maxChars >= 60 ? 20 : 10);
  const sizes = formatByteProgress(bytes, total);
  const room = maxChars - bar.length - sizes.length - 2;
  const chars = [...sanitizeForTerminal(label, { isSingleLine: true })];
  if (room < 2) return truncate(`${bar} ${sizes}`, maxChars);
  const shown = chars.length <= room ? chars.join('') : `${chars.slice(0, room - 1).join('')}…`;
  return `${bar} ${shown} ${sizes}`;
}

/** `12 MiB/s`, `1.5 MiB/s`; `–` when unknown. */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '–';
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Time left as `m:ss` or `h:mm:ss`; `–` when unknown. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const whole = Math.ceil(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function truncate(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join('')}…`;
}

export type PrintTone = 'plain' | 'muted' | 'info' | 'success' | 'warning' | 'error';

const TONE_CODES: Readonly<Record<Exclude<PrintTone, 'plain'>, readonly [string, string]>> = Object.freeze({
  muted: [`${CSI}2m`, `${CSI}22m`],
  info: [`${CSI}36m`, `${CSI}39m`],
  success: [`${CSI}32m`, `${CSI}39m`],
  warning: [`${CSI}33m`, `${CSI}39m`],
  error: [`${CSI}31m`, `${CSI}39m`],
});

/** Wraps `text` in the colour of `tone`; 'plain' and empty text stay as they are. */
export function styleTone(text: string, tone: PrintTone): string {
  if (tone === 'plain' || text === '') return text;
  const [open, close] = TONE_CODES[tone];
  return `${open}${text}${close}`;
}
