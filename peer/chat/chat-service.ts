import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  MAX_CHAT_TEXT_BYTES,
  normalizeUserName,
  SalaError,
  silentLogger,
  type Logger,
  type MessageOf,
  type WireMessage,
} from '../../common/index.js';
import type { PeerLink } from '../links/link-manager.js';
import { markInteractive } from '../links/link-priority.js';
import type { ChatHistory, ChatRecord } from './chat-history.js';

export interface ChatEvents {
  /** Accepted and stored; `status` says whether it already left (`sent`) or waits for a link (`queued`). */
  sent: [{ id: string; to: string; status: 'queued' | 'sent'; ref?: string }];
  /** The recipient stored it (its ack arrived). Emitted once per message. */
  delivered: [{ id: string; to: string }];
  /** A message from another user, emitted once per id however often it is redelivered. */
  message: [{ id: string; from: string; text: string; at: number }];
}

export interface ChatServiceOptions {
  /** Our normalised user name. */
  me: string;
  history: ChatHistory;
  /** The live link to a user, if any (the caller dials on demand and calls attach()). */
  linkTo: (user: string) => PeerLink | undefined;
  /** Server time (sender's `at`). */
  now: () => number;
  logger?: Logger;
}

/**
 * 1:1 chat over direct links: every message has an id that is the same on both ends, is stored
 * before it is sent (the history is the outbox), goes out in the order it was typed, and is sent
 * again on each new link until the recipient acknowledges it. The receiver stores before it
 * acknowledges and recognises a redelivered id, so each message is shown exactly once.
 */
export class ChatService extends EventEmitter<ChatEvents> {
  readonly #options: ChatServiceOptions;
  readonly #log: Logger;
  /** One flush at a time per recipient, so concurrent sends and link-ups keep the typed order. */
  readonly #flushes = new Map<string, Promise<void>>();
  /** Message ids already sent on each link: a link gets each message once (a new link gets all again). */
  readonly #sentOn = new WeakMap<PeerLink, Set<string>>();
  /**
   * Our unacknowledged messages per recipient, in typed order: read from the history once, then kept
   * here, so that sending and acknowledging touch the disk only where the guarantee needs it (store
   * before sending, mark delivered) and not to look things up — under load every disk operation
   * waits behind other work, and a chat message should not.
   */
  readonly #pending = new Map<string, Promise<Map<string, ChatRecord>>>();

  constructor(options: ChatServiceOptions) {
    super();
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
  }

  /**
   * Validates, stores and (when a link is up) sends a message; resolves with its id. `ref` is the
   * caller's tag, echoed in the `sent` event (which comes before any `delivered` for the id).
   */
  async send(to: string, text: string, options: { ref?: string | undefined } = {}): Promise<{ id: string; status: 'queued' | 'sent' }> {
    let recipient: string;
    try {
      recipient = normalizeUserName(to);
    } catch {
      throw new SalaError('SALA_E_UNKNOWN_USER', `"${to.slice(0, 40)}" is not a user name.`);
    }
    if (recipient === this.#options.me) throw new SalaError('SALA_E_UNKNOWN_USER', 'You cannot send a message to yourself.');
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_CHAT_TEXT_BYTES) {
      throw new SalaError('SALA_E_MESSAGE_TOO_LARGE', `The message is ${bytes} bytes; the limit is ${MAX_CHAT_TEXT_BYTES} (64 KiB).`);
    }
    const id = randomUUID();
    const record = { id, from: this.#options.me, to: recipient, peer: recipient, text, at: this.#options.now(), status: 'queued' as const };
    await this.#options.history.add(record);
    (await this.#pendingOf(recipient)).set(id, { ...record, seq: 0 });
    const status = this.#options.linkTo(recipient) !== undefined ? 'sent' : 'queued';
    this.emit('sent', { id, to: recipient, status, ...(options.ref === undefined ? {} : { ref: options.ref }) });
    await this.flush(recipient);
    return { id, status };
  }

  /** Starts serving a new link: its chat messages and acks, then whatever waits for that user. */
  attach(link: PeerLink): Promise<void> {
    link.messages.on('message', (message) => {
      this.#onMessage(link, message).catch((err: unknown) => this.#log.warn('chat.receive_failed', { message: String(err) }));
    });
    return this.flush(link.peer.user);
  }

  /** Sends (again) every unacknowledged message to `user` over its link, in the typed order. */
  flush(user: string): Promise<void> {
    const previous = this.#flushes.get(user) ?? Promise.resolve();
    const next = previous.then(() => this.#flushNow(user)).catch((err: unknown) => this.#log.warn('chat.flush_failed', { message: String(err) }));
    this.#flushes.set(user, next);
    return next;
  }

  #pendingOf(user: string): Promise<Map<string, ChatRecord>> {
    let pending = this.#pending.get(user);
    if (pending === undefined) {
      pending = this.#options.history.unacknowledged(user, this.#options.me).then((records) => new Map(records.map((r) => [r.id, r])));
      this.#pending.set(user, pending);
    }
    return pending;
  }

  history(withUser: string): Promise<ChatRecord[]> {
    return this.#options.history.with(normalizeUserName(withUser));
  }

  async #flushNow(user: string): Promise<void> {
    const link = this.#options.linkTo(user);
    if (link === undefined || link.messages.isClosed) return;
    let sent = this.#sentOn.get(link);
    if (sent === undefined) {
      sent = new Set();
      this.#sentOn.set(link, sent);
    }
    for (const record of [...(await this.#pendingOf(user)).values()]) {
      if (link.messages.isClosed) return;
      // On a live link TCP delivers what was sent; only a new link needs the unacknowledged again.
      if (sent.has(record.id)) continue;
      link.messages.send({ type: 'chat', id: record.id, text: record.text, at: record.at });
      markInteractive(link);
      sent.add(record.id);
      if (record.status === 'queued') {
        record.status = 'sent';
        // Bookkeeping only (a 'queued' message is resent just like a 'sent' one): not waited for.
        this.#options.history.setStatus(record.id, 'sent').catch((err: unknown) => this.#log.warn('chat.save_failed', { message: String(err) }));
      }
    }
  }

  async #onMessage(link: PeerLink, message: WireMessage): Promise<void> {
    if (message.type === 'chat' || message.type === 'chat.ack') markInteractive(link);
    if (message.type === 'chat') await this.#receive(link, message);
    else if (message.type === 'chat.ack') await this.#acknowledged(link, message);
  }

  async #receive(link: PeerLink, message: MessageOf<'chat'>): Promise<void> {
    const from = link.peer.user;
    // Stored before acknowledged; a redelivery (the ack was lost) is acknowledged again, not shown.
    const isNew = await this.#options.history.add({
      id: message.id,
      from,
      to: this.#options.me,
      peer: from,
      text: message.text,
      at: message.at,
      status: 'received',
    });
    if (!link.messages.isClosed) {
      link.messages.send({ type: 'chat.ack', id: message.id });
      markInteractive(link);
    }
    if (isNew) this.emit('message', { id: message.id, from, text: message.text, at: message.at });
  }

  async #acknowledged(link: PeerLink, message: MessageOf<'chat.ack'>): Promise<void> {
    const to = link.peer.user;
    const pending = await this.#pendingOf(to);
    // Only an ack from the recipient, for a message still pending, counts — and only once: the
    // first ack takes it out of the pending list (a redelivery may be acknowledged twice).
    if (!pending.delete(message.id)) return;
    this.#sentOn.get(link)?.delete(message.id);
    await this.#options.history.setStatus(message.id, 'delivered');
    this.emit('delivered', { id: message.id, to });
  }
}
