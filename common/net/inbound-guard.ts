import type { WireMessage } from '../wire/index.js';
import type { MessageChannel } from './message-channel.js';

export interface InboundGuardOptions {
  /** Sustained messages per second the other side may send, pings included (each costs us a write). */
  messagesPerSecond: number;
  /** How many messages may arrive at once above the sustained rate. */
  burst: number;
  /** The channel is destroyed when nothing at all arrives for this long (a dead or silent peer). */
  idleTimeoutMs: number;
  /** Called once, on the first message over the limit; messages after it are not handed on. */
  onFlood: () => void;
  /**
   * Messages bounded some other way do not count (file chunks: the receiver grants credit for
   * them, so their volume is its own choice). Every message still resets the idle timer.
   */
  isCounted?: (message: WireMessage) => boolean;
}

export interface InboundGuard {
  /** True once the other side went over the limit: its later messages must be ignored. */
  readonly isFlooded: boolean;
}

/**
 * Traffic control for one authenticated channel, shared by the server's sessions and the peers'
 * direct links: a token bucket over every inbound message and an idle timer. A flood ends that one
 * channel (the caller reports SALA_E_RATE_LIMIT and closes); nobody else is affected.
 */
export function guardInbound(messages: MessageChannel, options: InboundGuardOptions): InboundGuard {
  let tokens = options.burst;
  let lastRefillMs = Date.now();
  let isFlooded = false;
  let idleTimer = setTimeout(() => messages.destroy(), options.idleTimeoutMs);
  idleTimer.unref();

  messages.on('inbound', (message) => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => messages.destroy(), options.idleTimeoutMs);
    idleTimer.unref();
    if (isFlooded || options.isCounted?.(message) === false) return;
    const nowMs = Date.now();
    tokens = Math.min(options.burst, tokens + ((nowMs - lastRefillMs) / 1000) * options.messagesPerSecond);
    lastRefillMs = nowMs;
    tokens -= 1;
    if (tokens < 0) {
      isFlooded = true;
      options.onFlood();
    }
  });
  messages.once('close', () => clearTimeout(idleTimer));
  return {
    get isFlooded() {
      return isFlooded;
    },
  };
}
