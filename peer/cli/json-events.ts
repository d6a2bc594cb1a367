import type { SalaError } from '../../common/index.js';
import type { HistoryEntry } from '../peer.js';

/** One JSON-lines event (CONTRACT.md): `event` plus its fields; always printed as one line. */
export type JsonEvent = { event: string } & Record<string, unknown>;

/** A single line of JSON. JSON.stringify escapes U+2028/9 and control characters, so it never wraps. */
export function jsonLine(event: JsonEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** `error` with the code, the message for a person, the command's ref and any machine-readable details. */
export function errorEvent(error: SalaError, ref?: string): JsonEvent {
  const { ref: detailRef, ...details } = error.details;
  const echoed = ref ?? detailRef;
  return { event: 'error', code: error.code, message: error.message, ...details, ...(echoed === undefined ? {} : { ref: echoed }) };
}

/** `history` with times as ISO 8601 UTC, like every time Sala shows. */
export function historyEvent(withUser: string, messages: readonly HistoryEntry[]): JsonEvent {
  return {
    event: 'history',
    with: withUser,
    messages: messages.map((m) => ({ id: m.id, from: m.from, to: m.to, text: m.text, at: new Date(m.at).toISOString(), status: m.status })),
  };
}
