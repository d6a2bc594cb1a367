/**
 * The JSON lines between `files.js` (the driver, which also runs the rendezvous server) and each
 * `files-peer-process.js` (one side of a transfer per process). One command per stdin line,
 * answered by one `files.done` or `files.failed` line carrying the command's `id`. Between answers a
 * child also prints what its Peer emits about files and links (`files.event` lines), each stamped
 * with `at`: epoch milliseconds from `performance.timeOrigin + performance.now()`, which both
 * processes read from the same machine clock, so a sendFile in one and a file.received in the
 * other can be subtracted.
 */

export const FILES_EVENT_DONE = 'files.done';
export const FILES_EVENT_FAILED = 'files.failed';
export const FILES_EVENT_PEER = 'files.event';

export type FilesCommand =
  /** Logs a Peer in (127.0.0.1, mDNS off, auto-accept into `downloadsDir`). */
  | {
      cmd: 'connect';
      user: string;
      password: string;
      dataDir: string;
      downloadsDir: string;
      serverPort: number;
      serverKey: string;
      /** PeerOptions.tuning.fileWindowBytes; absent keeps the product's default (256 KiB). */
      windowBytes?: number;
    }
  /** Waits until `to` is online, then sends one chat message and waits for its ack (link up). */
  | { cmd: 'link'; to: string }
  /**
   * `count` chat messages to `to`, one at a time, `intervalMs` apart: each timed from send() to its
   * 'delivered' (stored by the receiver, ack back). Answers with the times in milliseconds.
   */
  | { cmd: 'chat-rtt'; to: string; count: number; intervalMs: number }
  /** `peer.sendFile(to, path)`: answers when it resolves (after the pre-offer hash and the offer). */
  | { cmd: 'send-file'; to: string; path: string }
  /** Raw baseline, far side: listen on 127.0.0.1:0 and pipe the one connection into `path`. */
  | { cmd: 'raw-listen'; path: string }
  /** Raw baseline, near side: connect and pipe `path` into the socket; answers when all is written. */
  | { cmd: 'raw-send'; port: number; path: string }
  /** RSS (every 50 ms) and CPU of this process from now until `meter-stop`. */
  | { cmd: 'meter-start' }
  | { cmd: 'meter-stop' };

export type FilesCommandWithId = FilesCommand & { id: number };

export interface ConnectResult {
  /** When Peer.connect resolved (logged in, listening, announced). */
  readyAt: number;
  rssBytes: number;
}

export interface SendFileResult {
  transferId: string;
  /** Just before `sendFile()` was called, and when it resolved. */
  calledAt: number;
  resolvedAt: number;
}

export interface RawSendResult {
  /** Before the connect, and when the last byte was handed to the socket and the socket ended. */
  startedAt: number;
  finishedAt: number;
}

export interface MeterResult {
  cpuMs: number;
  wallMs: number;
  peakRssBytes: number;
  medianRssBytes: number;
  samples: number;
}

/** What the child forwards, with the epoch time it saw it. */
export type PeerEventLine =
  | { name: 'file.progress'; at: number; transferId: string; bytes: number; total: number }
  | { name: 'file.received'; at: number; transferId: string; size: number; sha256: string; path: string }
  | { name: 'file.sent'; at: number; transferId: string }
  | { name: 'file.failed'; at: number; transferId: string; code: string; message: string }
  | { name: 'link.up'; at: number; user: string }
  | { name: 'link.down'; at: number; user: string; code: string }
  | { name: 'warning'; at: number; code: string; message: string }
  | { name: 'raw.received'; at: number; bytes: number };

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Epoch milliseconds with sub-millisecond resolution, comparable between processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
