import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { base32Encode, SalaError, type Endpoint, type Logger, type SessionSummary, type WireMessage } from '../common/index.js';
import type { SessionRecord, SessionStore } from './store/store.js';

/** What a session needs from the connection currently carrying it. */
export interface SessionLink {
  /** Ends the connection, telling the peer why when `error` is given. */
  close(error?: SalaError): void;
  /** Sends one message to the peer (dropped when the connection is closing). */
  send(message: WireMessage): void;
}

export interface LiveSession {
  readonly sessionId: string;
  readonly user: string;
  readonly dhPk: Uint8Array;
  readonly sigPk: Uint8Array;
  /** The client address at the latest login or resume, as the server saw it. */
  address: string;
  readonly sinceMs: number;
  /** Where the peer accepts direct links (from its `announce`). */
  endpoints: Endpoint[];
  /** Ticket generation last issued. */
  generation: number;
  link: SessionLink | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

export type SessionEndReason = 'logout' | 'kick' | 'disable' | 'password' | 'expired';

export interface SessionEvents {
  online: [session: LiveSession];
  updated: [session: LiveSession];
  offline: [session: LiveSession, reason: SessionEndReason];
}

export class SessionLimitError extends SalaError {
  readonly sessions: SessionSummary[];

  constructor(limit: number, sessions: SessionSummary[]) {
    const list = sessions.map((s) => `${s.sessionId} from ${s.address} since ${s.since}`).join('; ');
    super(
      'SALA_E_SESSION_LIMIT',
      `This account already has ${limit} live sessions (${list}). Log out or quit one of them, or ask the ` +
        'administrator to end one, then try again.',
      { details: { sessions } },
    );
    this.sessions = sessions;
  }
}

function newSessionId(): string {
  return base32Encode(randomBytes(10)).toLowerCase();
}

export function summarize(session: LiveSession): SessionSummary {
  return { sessionId: session.sessionId, address: session.address, since: new Date(session.sinceMs).toISOString() };
}

/**
 * The live sessions: at most `maxPerUser` per account, each either attached to a connection or
 * inside its grace period after the connection dropped (so a peer that reconnects keeps its slot).
 * Sessions are persisted, so a restarted server still knows them and peers resume without their
 * password (SECURITY.md H1). Every change is an event; the directory listens.
 */
export class SessionRegistry extends EventEmitter<SessionEvents> {
  readonly #sessions = new Map<string, LiveSession>();
  readonly #store: SessionStore;
  readonly #maxPerUser: number;
  readonly #graceMs: number;
  readonly #log: Logger;

  constructor(options: { store: SessionStore; maxPerUser: number; graceMs: number; logger: Logger }) {
    super();
    this.#store = options.store;
    this.#maxPerUser = options.maxPerUser;
    this.#graceMs = options.graceMs;
    this.#log = options.logger;
  }

  /**
   * Restores persisted sessions as detached, each with a full grace period from now: while the
   * server was down nobody could resume, so the peers get their chance after the restart.
   */
  async load(): Promise<void> {
    for (const record of await this.#store.list()) {
      const session = fromRecord(record);
      if (session === undefined) {
        await this.#store.remove(record.sessionId);
        continue;
      }
      this.#sessions.set(session.sessionId, session);
      this.#startGrace(session, this.#graceMs);
    }
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(sessionId: string): LiveSession | undefined {
    return this.#sessions.get(sessionId);
  }

  list(): LiveSession[] {
    return [...this.#sessions.values()];
  }

  forUser(user: string): LiveSession[] {
    return this.list().filter((s) => s.user === user);
  }

  /** Opens a session, or throws SessionLimitError naming the sessions that hold the slots. */
  create(input: { user: string; dhPk: Uint8Array; sigPk: Uint8Array; address: string; link: SessionLink }, nowMs = Date.now()): LiveSession {
    const existing = this.forUser(input.user);
    if (existing.length >= this.#maxPerUser) throw new SessionLimitError(this.#maxPerUser, existing.map(summarize));
    const session: LiveSession = {
      sessionId: newSessionId(),
      user: input.user,
      dhPk: input.dhPk,
      sigPk: input.sigPk,
      address: input.address,
      sinceMs: nowMs,
      endpoints: [],
      generation: 0,
      link: input.link,
      graceTimer: undefined,
    };
    this.#sessions.set(session.sessionId, session);
    this.#persist(session, nowMs);
    this.emit('online', session);
    return session;
  }

  /**
   * Re-attaches a session to a new connection. The session must exist, belong to `user`, and be
   * bound to the same device keys; anything else is SALA_E_SESSION_UNKNOWN (one answer for all).
   * A connection still attached (a half-dead old socket) is replaced.
   */
  resume(input: { sessionId: string; user: string; dhPk: Uint8Array; sigPk: Uint8Array; address: string; link: SessionLink }, nowMs = Date.now()): LiveSession {
    const session = this.#sessions.get(input.sessionId);
    if (
      session === undefined ||
      session.user !== input.user ||
      !Buffer.from(session.dhPk).equals(Buffer.from(input.dhPk)) ||
      !Buffer.from(session.sigPk).equals(Buffer.from(input.sigPk))
    ) {
      throw new SalaError('SALA_E_SESSION_UNKNOWN', 'That session has ended or belongs to another device; log in again.');
    }
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    const previous = session.link;
    session.link = input.link;
    previous?.close(new SalaError('SALA_E_CHANNEL_CLOSED', 'This session was resumed from another connection.'));
    if (session.address !== input.address) {
      session.address = input.address;
      this.emit('updated', session);
    }
    this.#persist(session, nowMs);
    return session;
  }

  /** The connection dropped without a logout: keep the session for the grace period. */
  detach(session: LiveSession, link: SessionLink, nowMs = Date.now()): void {
    if (session.link !== link || !this.#sessions.has(session.sessionId)) return;
    session.link = undefined;
    this.#persist(session, nowMs);
    this.#startGrace(session, this.#graceMs);
  }

  setEndpoints(session: LiveSession, endpoints: Endpoint[]): void {
    session.endpoints = endpoints;
    this.emit('updated', session);
  }

  nextGeneration(session: LiveSession): number {
    session.generation += 1;
    this.#persist(session, Date.now());
    return session.generation;
  }

  /** Ends a session for good: closes its connection (with `error`, if any) and frees its slot. */
  end(session: LiveSession, reason: SessionEndReason, error?: SalaError): void {
    if (this.#sessions.get(session.sessionId) !== session) return;
    this.#sessions.delete(session.sessionId);
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    const link = session.link;
    session.link = undefined;
    link?.close(error);
    this.#store.remove(session.sessionId).catch((err: unknown) => this.#log.error('session.store_failed', { message: String(err) }));
    this.emit('offline', session, reason);
  }

  /** Stops the grace timers without ending sessions (server shutdown: they resume after restart). */
  suspendAll(): void {
    for (const session of this.#sessions.values()) {
      clearTimeout(session.graceTimer);
      session.graceTimer = undefined;
    }
  }

  #startGrace(session: LiveSession, delayMs: number): void {
    clearTimeout(session.graceTimer);
    session.graceTimer = setTimeout(() => this.end(session, 'expired'), delayMs);
    session.graceTimer.unref();
  }

  #persist(session: LiveSession, nowMs: number): void {
    this.#store.put(toRecord(session, nowMs)).catch((err: unknown) => this.#log.error('session.store_failed', { message: String(err) }));
  }
}

function toRecord(session: LiveSession, nowMs: number): SessionRecord {
  return {
    sessionId: session.sessionId,
    user: session.user,
    dhPk: Buffer.from(session.dhPk).toString('base64'),
    sigPk: Buffer.from(session.sigPk).toString('base64'),
    address: session.address,
    since: new Date(session.sinceMs).toISOString(),
    lastSeenAt: new Date(nowMs).toISOString(),
    generation: session.generation,
  };
}

function fromRecord(record: SessionRecord): LiveSession | undefined {
  const dhPk = Buffer.from(record.dhPk, 'base64');
  const sigPk = Buffer.from(record.sigPk, 'base64');
  const sinceMs = Date.parse(record.since);
  if (dhPk.length !== 32 || sigPk.length !== 32 || !Number.isFinite(sinceMs)) return undefined;
  return {
    sessionId: record.sessionId,
    user: record.user,
    dhPk: new Uint8Array(dhPk),
    sigPk: new Uint8Array(sigPk),
    address: record.address,
    sinceMs,
    endpoints: [],
    generation: record.generation,
    link: undefined,
    graceTimer: undefined,
  };
}
