import { EventEmitter } from 'node:events';
import {
  Backoff,
  connectSecure,
  DEFAULTS,
  encodeClientHello,
  isSalaErrorCode,
  MessageChannel,
  parseFingerprint,
  SalaError,
  signLoginProof,
  silentLogger,
  toSalaError,
  verifyStaticKeyProof,
  type DirectoryEntry,
  type Endpoint,
  type Identity,
  type Logger,
  type MessageOf,
  type SignedRevocation,
  type SignedTicket,
  type WireMessage,
} from '../../common/index.js';
import type { ActivityOutbox } from './activity-outbox.js';
import { ServerClock } from './server-clock.js';

export interface ServerAddress {
  host: string;
  port: number;
}

export interface ServerTrust {
  /** The fingerprint the server must prove (confirmed by a person, or pinned earlier). */
  expectedFingerprint?: string;
  /** Accept any key (only for an explicit loopback server: the demo and tests). */
  isUnpinnedAllowed?: boolean;
}

export interface RendezvousClientOptions extends ServerAddress, ServerTrust {
  user: string;
  identity: Identity;
  outbox?: ActivityOutbox;
  logger?: Logger;
  heartbeatIntervalMs?: number;
  backoff?: { initialDelayMs: number; maxDelayMs: number; jitter: number };
}

export interface DirectoryChange {
  online: DirectoryEntry[];
  offline: { user: string; sessionId: string }[];
}

export interface RendezvousClientEvents {
  /** Logged in (or resumed): the session, the full directory. */
  welcome: [welcome: MessageOf<'welcome'>];
  directory: [change: DirectoryChange];
  ticket: [ticket: SignedTicket];
  revoked: [revocation: SignedRevocation];
  /** A group this session is in changed (joined, someone came or went, a new key). */
  'group.state': [state: MessageOf<'group.state'>];
  /** Out of the group: left, or — with an error — the join was refused (a bad name, a full group). */
  'group.left': [group: string, error: SalaError | undefined];
  'server.disconnected': [];
  'server.reconnected': [];
  /** The session is over and cannot be resumed (kicked, disabled, expired): a fatal error, once. */
  error: [error: SalaError];
}

/** Our own pace for activity events: a tenth under the server's budget, so clocks and jitter never trip it. */
const LOG_PACE = Object.freeze({ perSecond: DEFAULTS.activityEventsPerSecond * 0.9, burst: DEFAULTS.activityEventBurst * 0.9 });

const HANDSHAKE_FAILED_HINT = 'The server did not complete the encrypted handshake.';

/**
 * The peer's side of the rendezvous protocol: log in (or register), keep the session alive with
 * heartbeats, follow the directory, renew the ticket at half-life, ship activity events, and when the
 * connection drops, reconnect with exponential backoff and jitter and resume the session with the
 * device key — never with a cached password (SECURITY.md H1).
 */
export class RendezvousClient extends EventEmitter<RendezvousClientEvents> {
  readonly clock = new ServerClock();
  readonly #options: RendezvousClientOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  #messages: MessageChannel | undefined;
  #sessionId: string | undefined;
  #user: string | undefined;
  #ticket: SignedTicket | undefined;
  #serverFingerprint: string | undefined;
  #serverSigningKey: Uint8Array | undefined;
  #endpoints: Endpoint[] = [];
  /** Groups to be in: asked again after every reconnection (the server forgets groups on restart). */
  readonly #groups = new Set<string>();
  #renewTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #logPaceTimer: NodeJS.Timeout | undefined;
  #isLogBatchInFlight = false;
  #logTokens: number = LOG_PACE.burst;
  #logTokensAtMs = Date.now();
  #isClosed = false;
  #hasFailed = false;

  constructor(options: RendezvousClientOptions) {
    super();
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.#backoff = new Backoff(
      options.backoff ?? {
        initialDelayMs: DEFAULTS.reconnectInitialDelayMs,
        maxDelayMs: DEFAULTS.reconnectMaxDelayMs,
        jitter: DEFAULTS.reconnectJitter,
      },
    );
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** The normalised user name the server logged us in as. */
  get user(): string | undefined {
    return this.#user;
  }

  get ticket(): SignedTicket | undefined {
    return this.#ticket;
  }

  get serverFingerprint(): string | undefined {
    return this.#serverFingerprint;
  }

  /** The server's Ed25519 key, which signs tickets and revocations. */
  get serverSigningKey(): Uint8Array | undefined {
    return this.#serverSigningKey;
  }

  get isConnected(): boolean {
    return this.#messages !== undefined && !this.#messages.isClosed;
  }

  /** Logs in with the password; resolves with the welcome, or rejects with the server's SalaError. */
  async login(password: string, options: { signal?: AbortSignal } = {}): Promise<MessageOf<'welcome'>> {
    const { messages, first } = await openSession(this.#options, { op: 'login', password }, options.signal, this.clock);
    if (first.message.type !== 'welcome') {
      messages.destroy();
      throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The server answered a login with something else than a welcome.');
    }
    this.#serverFingerprint = first.fingerprint;
    this.#serverSigningKey = first.signingKey;
    this.#adopt(messages, first.message);
    return first.message;
  }

  /** Tells the server (and through its directory, everyone) where this peer accepts links. */
  announce(endpoints: Endpoint[]): void {
    this.#endpoints = endpoints;
    this.#send({ type: 'announce', addresses: endpoints });
  }

  /** Asks to join a group; the answer is a `group.state` event (or `refused`). */
  joinGroup(group: string): void {
    this.#groups.add(group);
    this.#send({ type: 'group.join', group });
  }

  leaveGroup(group: string): void {
    this.#groups.delete(group);
    this.#send({ type: 'group.leave', group });
  }

  /**
   * Ships pending activity events: one batch in flight at a time (events recorded meanwhile ride in
   * the next one), paced below the server's budget (DEFAULTS.activityEvent*), which disconnects a
   * connection that sends more. What cannot go yet waits in the outbox.
   */
  flushActivity(): void {
    const outbox = this.#options.outbox;
    if (outbox === undefined || !this.isConnected || this.#isLogBatchInFlight) return;
    const nowMs = Date.now();
    this.#logTokens = Math.min(LOG_PACE.burst, this.#logTokens + ((nowMs - this.#logTokensAtMs) / 1000) * LOG_PACE.perSecond);
    this.#logTokensAtMs = nowMs;
    const batch = outbox.takeBatch(Math.floor(this.#logTokens));
    if (batch.length === 0) {
      if (outbox.size > 0 && this.#logPaceTimer === undefined) {
        // Out of budget: try again when a token has come back.
        this.#logPaceTimer = setTimeout(() => {
          this.#logPaceTimer = undefined;
          this.flushActivity();
        }, Math.ceil(1000 / LOG_PACE.perSecond));
        this.#logPaceTimer.unref();
      }
      return;
    }
    if (!this.#send({ type: 'log.batch', events: batch })) {
      outbox.requeue();
      return;
    }
    this.#logTokens -= batch.length;
    this.#isLogBatchInFlight = true;
  }

  /** Ends the session (frees the slot at once) and closes. */
  async logout(): Promise<void> {
    const messages = this.#messages;
    this.#shutdown();
    if (messages === undefined || messages.isClosed) return;
    try {
      messages.send({ type: 'logout' });
    } catch {
      return;
    }
    // The server closes the connection once the session is ended.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        messages.destroy();
        resolve();
      }, 2_000);
      timer.unref();
      messages.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops without logging out: the session stays for its grace period (a peer that crashed). */
  close(): void {
    const messages = this.#messages;
    this.#shutdown();
    messages?.destroy();
  }

  #shutdown(): void {
    this.#isClosed = true;
    clearTimeout(this.#renewTimer);
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#logPaceTimer);
    this.#options.outbox?.flush();
  }

  #adopt(messages: MessageChannel, welcome: MessageOf<'welcome'>): void {
    this.#messages = messages;
    this.#sessionId = welcome.sessionId;
    this.#user = welcome.user;
    this.#ticket = welcome.ticket;
    this.#backoff.reset();
    messages.on('message', (message) => this.#onMessage(message));
    messages.on('error', (err) => this.#onConnectionError(err));
    messages.once('close', () => this.#onConnectionClosed(messages));
    this.#scheduleRenewal(welcome.renewInMs);
    this.#startHeartbeat(messages);
    messages.channel.resume();
    if (this.#endpoints.length > 0) this.#send({ type: 'announce', addresses: this.#endpoints });
    for (const group of this.#groups) this.#send({ type: 'group.join', group });
    this.#options.outbox?.requeue();
    this.#isLogBatchInFlight = false;
    this.flushActivity();
    this.emit('welcome', welcome);
  }

  #onMessage(message: WireMessage): void {
    switch (message.type) {
      case 'directory.update':
        this.emit('directory', { online: message.online, offline: message.offline });
        return;
      case 'ticket':
        this.#ticket = message.ticket;
        this.clock.sync(message.serverTimeMs);
        this.#scheduleRenewal(message.renewInMs);
        this.emit('ticket', message.ticket);
        return;
      case 'revoked':
        this.emit('revoked', message.revocation);
        return;
      case 'group.state':
        this.emit('group.state', message);
        return;
      case 'group.left':
        this.#groups.delete(message.group);
        this.emit(
          'group.left',
          message.group,
          message.code === undefined ? undefined : new SalaError(isSalaErrorCode(message.code) ? message.code : 'SALA_E_BUSY', message.message ?? 'The group could not be joined.'),
        );
        return;
      case 'log.ack':
        this.#isLogBatchInFlight = false;
        this.#options.outbox?.acknowledge(message.ids);
        this.flushActivity();
        return;
      case 'error':
        // Kicked, disabled, session gone: over for good. Anything else (busy, rate-limited, a server
        // hiccup): drop this connection and resume with backoff.
        if (isFatalCode(message.code)) this.#fail(new SalaError(message.code, message.message));
        else {
          this.#log.info('rendezvous.server_error', { code: message.code });
          this.#messages?.destroy();
        }
        return;
      default:
        this.#log.warn('rendezvous.unexpected_message', { type: message.type });
    }
  }

  #onConnectionError(err: SalaError): void {
    this.#log.info('rendezvous.connection_error', { code: err.code });
  }

  #onConnectionClosed(messages: MessageChannel): void {
    if (this.#messages !== messages) return;
    this.#messages = undefined;
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#renewTimer);
    this.#options.outbox?.requeue();
    if (this.#isClosed || this.#hasFailed) return;
    this.emit('server.disconnected');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#isClosed || this.#hasFailed) return;
    const delayMs = this.#backoff.next();
    this.#log.info('rendezvous.reconnect_scheduled', { delayMs, attempt: this.#backoff.attempt });
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delayMs);
  }

  async #reconnect(): Promise<void> {
    if (this.#isClosed || this.#hasFailed) return;
    const sessionId = this.#sessionId;
    if (sessionId === undefined) return;
    try {
      const { messages, first } = await openSession(this.#options, { op: 'resume', sessionId }, undefined, this.clock);
      if (this.#isClosed) {
        messages.destroy();
        return;
      }
      if (first.message.type !== 'welcome') throw new SalaError('SALA_E_HANDSHAKE_FAILED', HANDSHAKE_FAILED_HINT);
      this.#adopt(messages, first.message);
      this.emit('server.reconnected');
    } catch (err) {
      const error = toSalaError(err, 'SALA_E_SERVER_UNREACHABLE', 'The server could not be reached.');
      if (isFatalCode(error.code)) {
        this.#fail(error);
        return;
      }
      this.#log.info('rendezvous.reconnect_failed', { code: error.code });
      this.#scheduleReconnect();
    }
  }

  /** A fatal end: emitted once, then the client stays closed. */
  #fail(error: SalaError): void {
    if (this.#hasFailed) return;
    this.#hasFailed = true;
    const messages = this.#messages;
    this.#shutdown();
    messages?.destroy();
    this.emit('error', error);
  }

  #scheduleRenewal(renewInMs: number): void {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => this.#send({ type: 'ticket.renew' }), renewInMs);
    this.#renewTimer.unref();
  }

  /** A ping every interval; a connection that cannot answer within it is dropped and resumed. */
  #startHeartbeat(messages: MessageChannel): void {
    clearInterval(this.#heartbeatTimer);
    const intervalMs = this.#options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs;
    this.#heartbeatTimer = setInterval(() => {
      messages.ping(undefined, { signal: AbortSignal.timeout(intervalMs) }).catch(() => messages.destroy());
    }, intervalMs);
    this.#heartbeatTimer.unref();
  }

  #send(message: WireMessage): boolean {
    const messages = this.#messages;
    if (messages === undefined || messages.isClosed) return false;
    try {
      messages.send(message);
      return true;
    } catch {
      return false;
    }
  }
}

/** Errors after which resuming is pointless: the session or account is gone, or the server is not ours. */
function isFatalCode(code: string): code is SalaError['code'] {
  return isSalaErrorCode(code) && [
    'SALA_E_KICKED',
    'SALA_E_ACCOUNT_DISABLED',
    'SALA_E_SESSION_UNKNOWN',
    'SALA_E_SERVER_KEY_MISMATCH',
    'SALA_E_SERVER_KEY_UNVERIFIED',
    'SALA_E_AUTH_FAILED',
  ].includes(code);
}

export type OpenRequest = { op: 'login'; password: string } | { op: 'register'; password: string } | { op: 'resume'; sessionId: string };

interface FirstAnswer {
  message: MessageOf<'welcome'> | MessageOf<'registered'>;
  fingerprint: string;
  signingKey: Uint8Array;
}

/**
 * Connects, runs the handshake with the pin check before msg 3 (the password is never sent to a
 * server that has not proved the expected key), sends the request in msg 3 and waits for the
 * server's first answer: a welcome, a registration receipt, or an error (rejected as SalaError
 * with the server's code and details).
 */
export async function openSession(
  options: ServerAddress & ServerTrust & { user: string; identity: Identity },
  request: OpenRequest,
  signal: AbortSignal | undefined,
  clock: ServerClock,
): Promise<{ messages: MessageChannel; first: FirstAnswer }> {
  let proven: { fingerprint: string; signingKey: Uint8Array } | undefined;
  const expected = options.expectedFingerprint === undefined ? undefined : parseFingerprint(options.expectedFingerprint);
  let channel;
  try {
    channel = await connectSecure({
      host: options.host,
      port: options.port,
      purpose: 'rdv',
      staticKeyPair: options.identity.dh,
      ...(signal === undefined ? {} : { signal }),
      verifyRemote: ({ payload, remoteStatic }) => {
        const proof = verifyStaticKeyProof(payload, remoteStatic);
        if (expected !== undefined && proof.fingerprint !== expected) {
          throw new SalaError(
            'SALA_E_SERVER_KEY_MISMATCH',
            `The server at ${options.host}:${options.port} proved the key ${proof.fingerprint}, not the expected ${expected}. ` +
              'It may be an impostor; nothing was sent to it. If the server was really reinstalled, confirm its new code.',
          );
        }
        if (expected === undefined && options.isUnpinnedAllowed !== true) {
          throw new SalaError(
            'SALA_E_SERVER_KEY_UNVERIFIED',
            `The server's key ${proof.fingerprint} has not been confirmed; pass --server-key with the code the server shows.`,
          );
        }
        if (proof.timeMs !== undefined) clock.sync(proof.timeMs);
        proven = { fingerprint: proof.fingerprint, signingKey: proof.signingKey };
      },
      payload: ({ handshakeHash }) =>
        encodeClientHello({
          v: 1,
          op: request.op,
          user: options.user,
          ...(request.op === 'resume' ? { sessionId: request.sessionId } : { password: request.password }),
          sigPk: options.identity.signing.publicKey,
          pop: signLoginProof(options.identity.signing.privateKey, handshakeHash),
        }),
    });
  } catch (err) {
    if (err instanceof SalaError && (err.code === 'SALA_E_CONNECTION_FAILED' || err.code === 'SALA_E_HANDSHAKE_TIMEOUT')) {
      throw new SalaError('SALA_E_SERVER_UNREACHABLE', `Cannot reach the Sala server at ${options.host}:${options.port}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  const messages = new MessageChannel(channel);
  const answer = await firstMessage(messages, signal);
  if (answer.type === 'error') {
    messages.destroy();
    throw new SalaError(isSalaErrorCode(answer.code) ? answer.code : 'SALA_E_CONNECTION_FAILED', answer.message, {
      details: {
        ...(answer.sessions === undefined ? {} : { sessions: answer.sessions }),
        ...(answer.retryAfterMs === undefined ? {} : { retryAfterMs: answer.retryAfterMs }),
      },
    });
  }
  if ((answer.type !== 'welcome' && answer.type !== 'registered') || proven === undefined) {
    messages.destroy();
    throw new SalaError('SALA_E_HANDSHAKE_FAILED', HANDSHAKE_FAILED_HINT);
  }
  if (answer.type === 'welcome') clock.sync(answer.serverTimeMs);
  return { messages, first: { message: answer, ...proven } };
}

function firstMessage(messages: MessageChannel, signal: AbortSignal | undefined): Promise<WireMessage> {
  return new Promise<WireMessage>((resolve, reject) => {
    const deadline = setTimeout(() => finish(new SalaError('SALA_E_SERVER_UNREACHABLE', 'The server did not answer the login in time.')), 30_000);
    const onMessage = (message: WireMessage): void => {
      // Hold everything after the first answer until the caller has attached its own listeners.
      messages.channel.pause();
      finish(undefined, message);
    };
    const onClose = (): void => finish(new SalaError('SALA_E_SERVER_UNREACHABLE', 'The server closed the connection without answering.'));
    const onAbort = (): void => finish(new SalaError('SALA_E_ABORTED', 'The login was cancelled.'));
    function finish(err: SalaError | undefined, message?: WireMessage): void {
      clearTimeout(deadline);
      messages.off('message', onMessage);
      messages.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        messages.destroy();
        reject(err);
      } else resolve(message as WireMessage);
    }
    messages.on('message', onMessage);
    messages.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Creates an account on the server (when it allows self-registration); resolves with the stored name. */
export async function registerAccount(
  options: ServerAddress & ServerTrust & { user: string; password: string; identity: Identity },
): Promise<{ user: string; fingerprint: string }> {
  const { messages, first } = await openSession(options, { op: 'register', password: options.password }, undefined, new ServerClock());
  messages.channel.resume();
  await messages.close();
  if (first.message.type !== 'registered') throw new SalaError('SALA_E_HANDSHAKE_FAILED', HANDSHAKE_FAILED_HINT);
  return { user: first.message.user, fingerprint: first.fingerprint };
}
