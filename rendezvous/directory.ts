import { MAX_DIRECTORY_ENTRIES, MAX_OFFLINE_ENTRIES, type DirectoryEntry, type WireMessage } from '../common/index.js';
import type { LiveSession, SessionRegistry } from './sessions.js';

/** Where directory updates go: the connection of each attached session. */
export interface DirectorySubscriber {
  readonly sessionId: string;
  send(message: WireMessage): void;
}

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

  /** Sends a message to every connected session at once (revocations). */
  broadcast(message: WireMessage): void {
    for (const subscriber of this.#subscribers.values()) subscriber.send(message);
  }

  /** Sends what is pending now (tests and shutdown); normally the batch timer does this. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pendingOnline.size === 0 && this.#pendingOffline.size === 0) return;
    const messages = directoryUpdates([...this.#pendingOnline.values()].map(toDirectoryEntry), [...this.#pendingOffline.values()]);
    this.#pendingOnline.clear();
    this.#pendingOffline.clear();
    for (const subscriber of this.#subscribers.values()) for (const message of messages) subscriber.send(message);
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

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.flush(), this.#batchMs);
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
