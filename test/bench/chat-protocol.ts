/**
 * The JSON lines between `chat.js` (the driver, which also runs the rendezvous server) and each
 * `chat-peer-process.js` (one Sala peer per process). One command per stdin line, answered by one
 * event line on stdout carrying the command's `id`; `chat.failed` answers a command that failed.
 */
import type { ResourceUse } from './resources.js';

export const CHAT_EVENT_DONE = 'chat.done';
export const CHAT_EVENT_FAILED = 'chat.failed';

/** Link rate limits for one peer (PeerOptions.tuning); absent fields keep DEFAULTS. */
export interface LinkLimits {
  linkMessagesPerSecond?: number;
  linkMessageBurst?: number;
}

export type ChatCommand =
  | { cmd: 'connect'; user: string; password: string; dataDir: string; serverPort: number; serverKey: string; limits: LinkLimits }
  /** Waits until `to` is online, then sends one message and waits for its ack (the link is up). */
  | { cmd: 'link'; to: string }
  /** Raw TCP echo server on 127.0.0.1:0 (the baseline's far side). */
  | { cmd: 'raw-listen' }
  | { cmd: 'raw-ping'; port: number; pings: number; warmup: number; bytes: number }
  /** Replies to every chat message with the same text (the echo case's far side). */
  | { cmd: 'echo'; isOn: boolean }
  /** Sequential round trips: `ack` = send → 'delivered'; `echo` = send → the reply's 'message'. */
  | { cmd: 'rtt'; to: string; mode: 'ack' | 'echo'; count: number; warmup: number; textBytes: number }
  /**
   * `count` messages with at most `inFlight` unacknowledged (and at most `perSecond` when given),
   * until every one is acknowledged or `timeoutMs` passes.
   */
  | { cmd: 'flood'; to: string; count: number; inFlight: number; perSecond?: number; textBytes: number; timeoutMs: number }
  | { cmd: 'meter-start' }
  | { cmd: 'meter-stop' }
  | { cmd: 'stats' };

export type ChatCommandWithId = ChatCommand & { id: number };

export interface RttResult {
  /** Measured round trips (warm-up excluded), microseconds, in the order they were made (raw-ping: sorted). */
  samplesUs: number[];
}

export interface FloodResult {
  sent: number;
  delivered: number;
  /** From the first send until the last ack (or the deadline). */
  seconds: number;
  /** Seconds until the first `link.down`, if the link went down. */
  firstLinkDownSeconds: number | undefined;
  /** Acks counted when the link first went down. */
  deliveredAtFirstLinkDown: number | undefined;
}

/** What each peer process counts from its Peer's events since it connected. */
export interface PeerStats {
  rssBytes: number;
  heapUsedBytes: number;
  /** 'message' and 'delivered' events (each message once). */
  received: number;
  delivered: number;
  /** Chat and ack frames that arrived, redeliveries included. */
  chatFramesIn: number;
  ackFramesIn: number;
  /** `link.down` codes in order ('none' for a clean close). */
  linkDowns: string[];
  serverDisconnects: number;
  warnings: string[];
}

export type MeterResult = ResourceUse;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
