import { encodeMessage, MAX_DIRECTORY_ENTRIES, MAX_OFFLINE_ENTRIES, type DirectoryEntry, type WireMessage } from '../common/index.js';
import type { LiveSession, SessionRegistry } from './sessions.js';

/** Where directory updates go: the connection of each attached session. */
export interface DirectorySubscriber {
  readonly sessionId: string;
  /** Bytes from encodeMessage(): encoded once per change, written to every subscriber. */
  sendEncoded(encoded: Buffer): void;
}

/** Subscribers served per event-loop turn: 1,000 sessions' encrypt-and-write would stall it ~15 ms. */
const SUBSCRIBERS_PER_TURN = 128;
/** The batch window grows with the audience (0.2 ms per subscriber, up to 250 ms): see #schedule. */
const MAX_BATCH_MS = 250;

export function toDirectoryEntry(session: LiveSession): DirectoryEntry {
  return {
    user: session.user,
    sessionId: session.sessionId,
    addresses: session.endpoints,
    dhPk: session.dhPk,
    sigPk: session.sigPk,
    since: session.sinceMs,
  };
}

/**
 * Who is online, pushed to every connected session as it changes — no polling. Changes are gathered
 * for `batchMs` and sent as one `directory.update` per subscriber, so a burst of logins costs one
 * message per connection rather than one per login per connection; a session's latest state wins
 * within a batch.
 */
export class Directory {
  readonly #registry: SessionRegistry;
  readonly #subscribers = new Map<string, DirectorySubscriber>();
  readonly #batchMs: number;
  readonly #pendingOnline = new Map<string, LiveSession>();
  readonly #pendingOffline = new Map<string, { user: string; sessionId: string }>();
  #timer: NodeJS.Timeout | undefined;
  #deliveries: Promise<void> = Promise.resolve();

  constructor(registry: SessionRegistry, options: { batchMs: number }) {
    this.#registry = registry;
    this.#batchMs = options.batchMs;
    registry.on('online', this.#onChange);
    registry.on('updated', this.#onChange);
    registry.on('offline', (session) => {
      this.#pendingOnline.delete(session.sessionId);
      this.#pendingOffline.set(session.sessionId, { user: session.user, sessionId: session.sessionId });
      this.#unsubscribe(session.sessionId);
      this.#schedule();
    });
  }

  /** The full directory, for a welcome. */
  snapshot(): DirectoryEntry[] {
    return this.#registry.list().map(toDirectoryEntry);
  }

  subscribe(subscriber: DirectorySubscriber): void {
    this.#subscribers.set(subscriber.sessionId, subscriber);
  }

  unsubscribe(subscriber: DirectorySubscriber): void {
    if (this.#subscribers.get(subscriber.sessionId) === subscriber) this.#subscribers.delete(subscriber.sessionId);
  }

  /** Sends a message to every connected session (revocations). */
  broadcast(message: WireMessage): void {
    this.#deliver([encodeMessage(message)]);
  }

  /** Sends what is pending now (tests and shutdown); normally the batch timer does this. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pendingOnline.size === 0 && this.#pendingOffline.size === 0) return;
    const messages = directoryUpdates([...this.#pendingOnline.values()].map(toDirectoryEntry), [...this.#pendingOffline.values()]);
    this.#pendingOnline.clear();
    this.#pendingOffline.clear();
    this.#deliver(messages.map(encodeMessage));
  }

  /**
   * Writes the encoded messages to every subscriber, a slice per event-loop turn so that a
   * classroom-sized broadcast never holds up logins and pings. Order per subscriber is kept: each
   * gets all messages of one delivery before the next delivery reaches it (deliveries queue).
   */
  #deliver(encoded: readonly Buffer[]): void {
    const recipients = [...this.#subscribers.values()];
    this.#deliveries = this.#deliveries.catch(() => undefined).then(
      () =>
        new Promise<void>((resolve) => {
          let index = 0;
          const sendSlice = (): void => {
            const end = Math.min(index + SUBSCRIBERS_PER_TURN, recipients.length);
            for (; index < end; index++) {
              const subscriber = recipients[index] as DirectorySubscriber;
              // A subscriber that left meanwhile (logout, drop) is skipped.
              if (this.#subscribers.get(subscriber.sessionId) !== subscriber) continue;
              try {
                for (const bytes of encoded) subscriber.sendEncoded(bytes);
              } catch {
                // one broken subscriber must not stop the others, nor the later deliveries
              }
            }
            if (index < recipients.length) setImmediate(sendSlice);
            else resolve();
          };
          sendSlice();
        }),
    );
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#subscribers.clear();
  }

  readonly #onChange = (session: LiveSession): void => {
    this.#pendingOffline.delete(session.sessionId);
    this.#pendingOnline.set(session.sessionId, session);
    this.#schedule();
  };

  #unsubscribe(sessionId: string): void {
    this.#subscribers.delete(sessionId);
  }

  /**
   * The window in which changes are gathered grows with the number of subscribers: each flush costs
   * one encrypt-and-write per subscriber, so during a login burst a larger audience gets fewer,
   * larger updates (25 ms for a few sessions, 225 ms for 1,000: well inside the 1 s target).
   */
  #schedule(): void {
    if (this.#timer !== undefined) return;
    const windowMs = Math.min(MAX_BATCH_MS, this.#batchMs + this.#subscribers.size * 0.2);
    this.#timer = setTimeout(() => this.flush(), windowMs);
    this.#timer.unref();
  }
}

/** Splits a directory change into messages that each fit the protocol's per-message limits. */
export function directoryUpdates(
  online: readonly DirectoryEntry[],
  offline: readonly { user: string; sessionId: string }[],
): WireMessage[] {
  const messages: WireMessage[] = [];
  for (let i = 0; i < online.length; i += MAX_DIRECTORY_ENTRIES) {
    messages.push({ type: 'directory.update', online: online.slice(i, i + MAX_DIRECTORY_ENTRIES), offline: [] });
  }
  for (let i = 0; i < offline.length; i += MAX_OFFLINE_ENTRIES) {
    messages.push({ type: 'directory.update', online: [], offline: offline.slice(i, i + MAX_OFFLINE_ENTRIES) });
  }
  return messages;
}
