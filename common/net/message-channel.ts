import { EventEmitter } from 'node:events';
import type { SecureChannel } from '../crypto/secure-channel.js';
import { SalaError, toSalaError } from '../errors.js';
import { decodeMessage, encodeMessage, type MessageOf, type WireMessage } from '../wire/messages.js';

export interface MessageChannelEvents {
  /** Every valid message received, pings included (for rate limits and idle timers). */
  inbound: [message: WireMessage];
  /** Every valid message received except ping and pong, which the channel handles itself. */
  message: [message: WireMessage];
  /** Emitted at most once, for the error that ended the channel. */
  error: [error: SalaError];
  close: [];
}

/**
 * Messages that may wait in a channel's write queue. A peer that stops reading while making us
 * write (pings it never reads the answers to, a directory it never consumes) would otherwise grow
 * our memory without bound; past this it is disconnected.
 */
export const MAX_QUEUED_MESSAGES = 512;

export interface PingResult {
  rttMs: number;
  data: Uint8Array | undefined;
}

/**
 * Typed protocol messages over a SecureChannel. Every received frame is decoded and validated
 * before anyone sees it; a frame that fails validation ends the channel (after telling the other
 * side why), because a peer that speaks the protocol wrongly cannot be trusted with the next frame.
 * `ping` is answered automatically with a `pong`, so liveness probes need no application code.
 */
export class MessageChannel extends EventEmitter<MessageChannelEvents> {
  readonly channel: SecureChannel;
  #nextPingId = 1;
  readonly #pendingPings = new Map<number, { sentAt: number; resolve: (r: PingResult) => void; reject: (e: Error) => void }>();
  #isClosed = false;
  #hasReportedError = false;

  constructor(channel: SecureChannel) {
    super();
    this.channel = channel;
    channel.on('data', this.#onData);
    channel.on('error', this.#onError);
    channel.on('close', this.#onClose);
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Queues a message; returns false when the caller should wait for 'drain' on `channel`. */
  send(message: WireMessage): boolean {
    return this.sendEncoded(encodeMessage(message));
  }

  /**
   * Sends a message already encoded with encodeMessage(): a broadcast encodes once and writes the
   * same bytes to every channel (each channel still encrypts with its own keys). An array is one
   * message in pieces (a small envelope, then bulk data sealed where it lies; see SecureChannel).
   */
  sendEncoded(encoded: Buffer | readonly Uint8Array[]): boolean {
    if (this.#isClosed || this.channel.destroyed || this.channel.writableEnded) {
      throw new SalaError('SALA_E_CHANNEL_CLOSED', 'The connection is closed; the message was not sent.');
    }
    if (this.channel.writableLength >= MAX_QUEUED_MESSAGES) {
      const error = new SalaError('SALA_E_RATE_LIMIT', 'The other side does not read what it is sent; the connection was closed.');
      this.#reportError(error);
      this.channel.destroy(error);
      throw error;
    }
    return this.channel.write(encoded);
  }

  /** Sends a ping and resolves with the round-trip time when the matching pong arrives. */
  ping(data?: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<PingResult> {
    options.signal?.throwIfAborted();
    const id = this.#nextPingId++;
    return new Promise<PingResult>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pendingPings.delete(id);
        reject(new SalaError('SALA_E_ABORTED', 'The ping was cancelled.'));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pendingPings.set(id, {
        sentAt: performance.now(),
        resolve: (r) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          options.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      try {
        this.send(data === undefined ? { type: 'ping', id } : { type: 'ping', id, data });
      } catch (err) {
        this.#pendingPings.delete(id);
        reject(err);
      }
    });
  }

  /** Ends the channel gracefully (encrypted close); destroys it if that takes longer than `deadlineMs`. */
  close(deadlineMs = 2_000): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.channel.destroyed) {
        resolve();
        return;
      }
      const timer = setTimeout(() => this.channel.destroy(), deadlineMs);
      timer.unref();
      this.channel.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.channel.end();
      // Keep reading so the other side's close frame is seen and the socket can finish.
      this.channel.resume();
    });
  }

  destroy(err?: SalaError): void {
    this.channel.destroy(err);
  }

  readonly #onData = (frame: Buffer): void => {
    let message: WireMessage;
    try {
      message = decodeMessage(frame);
    } catch (err) {
      const error = toSalaError(err, 'SALA_E_PROTOCOL_MALFORMED', 'The other side sent an invalid message.');
      this.#refuse(error);
      return;
    }
    this.emit('inbound', message);
    if (message.type === 'ping') {
      this.#answerPing(message);
      return;
    }
    if (message.type === 'pong') {
      this.#settlePing(message);
      return;
    }
    this.emit('message', message);
  };

  #answerPing(ping: MessageOf<'ping'>): void {
    // A peer that pings without reading the answers gets none while our queue is backed up.
    if (this.channel.writableEnded || this.channel.writableNeedDrain) return;
    try {
      this.send(ping.data === undefined ? { type: 'pong', id: ping.id } : { type: 'pong', id: ping.id, data: ping.data });
    } catch {
      // closed meanwhile, or closed by send() for not reading: already reported
    }
  }

  #settlePing(pong: MessageOf<'pong'>): void {
    const pending = this.#pendingPings.get(pong.id);
    if (pending === undefined) return; // a late answer to a cancelled ping
    this.#pendingPings.delete(pong.id);
    pending.resolve({ rttMs: performance.now() - pending.sentAt, data: pong.data });
  }

  /**
   * Tells the other side what was wrong, then ends the channel. Nothing after the bad frame is
   * read; the socket gets a short grace to flush the error message before it is destroyed.
   */
  #refuse(error: SalaError): void {
    this.channel.off('data', this.#onData);
    this.#reportError(error);
    if (!this.channel.writableEnded && !this.channel.destroyed) {
      this.channel.end(encodeMessage({ type: 'error', code: error.code, message: error.message.slice(0, 1024) }));
    }
    const timer = setTimeout(() => this.channel.destroy(), 1_000);
    timer.unref();
    this.channel.once('close', () => clearTimeout(timer));
  }

  readonly #onError = (err: Error): void => {
    this.#reportError(toSalaError(err, 'SALA_E_CONNECTION_FAILED', 'The connection failed.'));
  };

  #reportError(error: SalaError): void {
    this.#rejectPings(error);
    if (this.#hasReportedError) return;
    this.#hasReportedError = true;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  readonly #onClose = (): void => {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#rejectPings(new SalaError('SALA_E_CHANNEL_CLOSED', 'The connection closed before the answer arrived.'));
    this.emit('close');
  };

  #rejectPings(err: Error): void {
    for (const pending of this.#pendingPings.values()) pending.reject(err);
    this.#pendingPings.clear();
  }
}
