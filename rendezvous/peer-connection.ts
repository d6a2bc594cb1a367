import { isIP, type Socket } from 'node:net';
import {
  acceptSecure,
  DEFAULTS,
  decodeClientHello,
  isLoopbackHost,
  encodeMessage,
  guardInbound,
  MAX_DIRECTORY_ENTRIES,
  MAX_REVOCATIONS,
  MessageChannel,
  normalizeUserName,
  proveStaticKey,
  SalaError,
  toSalaError,
  verifyLoginProof,
  type ClientHello,
  type Endpoint,
  type Identity,
  type Logger,
  type SecureChannel,
  type WireMessage,
} from '../common/index.js';
import type { Accounts } from './accounts.js';
import type { ActivityLog } from './activity-log.js';
import type { GroupRegistry } from './groups.js';
import type { LoginThrottle } from './auth/rate-limiter.js';

/** What the login path needs of the throttle. */
export type LoginGate = Pick<LoginThrottle, 'check' | 'recordFailure' | 'recordSuccess'>;
import { directoryUpdates, type Directory, type DirectorySubscriber } from './directory.js';
import { SessionLimitError, type LiveSession, type SessionLink, type SessionRegistry } from './sessions.js';
import type { TicketAuthority } from './ticket-authority.js';

export interface ConnectionLimits {
  isSelfRegistrationOpen: boolean;
  handshakeTimeoutMs: number;
  graceMs: number;
  renewAfterMs: number;
  idleTimeoutMs: number;
  messagesPerSecond: number;
  messageBurst: number;
}

export interface ServerContext {
  identity: Identity;
  accounts: Accounts;
  sessions: SessionRegistry;
  directory: Directory;
  tickets: TicketAuthority;
  activity: ActivityLog;
  groups: GroupRegistry;
  throttle: LoginGate;
  limits: ConnectionLimits;
  logger: Logger;
}

/** `::ffff:10.0.0.5` → `10.0.0.5`: the form people recognise, and one key per client for limits. */
export function clientAddress(socket: Socket): string {
  const raw = socket.remoteAddress ?? 'unknown';
  return raw.startsWith('::ffff:') ? raw.slice(7) : raw;
}

/**
 * One peer connection, from handshake to close. The handshake authenticates the server to the
 * peer (its static key signed in msg 2) and binds the peer's device key to this very handshake
 * (the login proof in msg 3). Then the request in msg 3 is carried out — register, log in or
 * resume — and a logged-in connection serves the session until it closes.
 */
export async function serveConnection(socket: Socket, ctx: ServerContext): Promise<void> {
  const address = clientAddress(socket);
  let hello: ClientHello | undefined;
  let channel: SecureChannel;
  try {
    channel = await acceptSecure(socket, {
      purpose: 'rdv',
      staticKeyPair: ctx.identity.dh,
      handshakeTimeoutMs: ctx.limits.handshakeTimeoutMs,
      payload: () => proveStaticKey(ctx.identity, { timeMs: Date.now() }),
      verifyRemote: ({ payload, handshakeHashBefore }) => {
        const decoded = decodeClientHello(payload);
        if (!verifyLoginProof(decoded.sigPk, handshakeHashBefore, decoded.pop)) {
          throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
        }
        hello = decoded;
      },
    });
  } catch (err) {
    ctx.logger.info('handshake.failed', { address, code: err instanceof SalaError ? err.code : 'unknown' });
    return;
  }
  if (hello === undefined) {
    channel.destroy();
    return;
  }
  const messages = new MessageChannel(channel);
  messages.on('error', (err) => ctx.logger.info('connection.error', { address, code: err.code }));
  try {
    switch (hello.op) {
      case 'register':
        await register(messages, hello, address, ctx);
        return;
      case 'login':
      case 'resume':
        await startSession(messages, channel, hello, address, ctx);
        return;
    }
  } catch (err) {
    refuse(messages, toSalaError(err, 'SALA_E_BUSY', 'The server could not handle the request; try again.'));
  }
}

/** Sends the error (with its extra fields) and closes the connection gracefully. */
function refuse(messages: MessageChannel, error: SalaError): void {
  if (messages.isClosed) return;
  const reply: WireMessage = { type: 'error', code: error.code, message: error.message.slice(0, 1024) };
  const { sessions, retryAfterMs } = error.details;
  if (sessions !== undefined) reply.sessions = [...sessions];
  if (retryAfterMs !== undefined) reply.retryAfterMs = retryAfterMs;
  try {
    messages.send(reply);
  } catch {
    // already closing
  }
  void messages.close();
}

export function rateLimited(retryAfterMs: number): SalaError {
  return new SalaError('SALA_E_RATE_LIMIT', `Too many attempts; try again in ${Math.ceil(retryAfterMs / 1000)} s.`, {
    details: { retryAfterMs },
  });
}

async function register(messages: MessageChannel, hello: ClientHello, address: string, ctx: ServerContext): Promise<void> {
  if (!ctx.limits.isSelfRegistrationOpen) {
    throw new SalaError('SALA_E_REGISTRATION_CLOSED', 'This server does not allow self-registration; ask the teacher or administrator for an account.');
  }
  const name = normalizeUserName(hello.user);
  const verdict = ctx.throttle.check(name, address);
  if (!verdict.isAllowed) throw rateLimited(verdict.retryAfterMs);
  // Registration spends an argon2 hash: it counts against the same budget as a failed login.
  ctx.throttle.recordFailure(name, address);
  const user = await ctx.accounts.register(name, hello.password ?? '');
  ctx.activity.server('user.registered', { user: user.name, detail: `address=${address}` });
  messages.send({ type: 'registered', user: user.name });
  await messages.close();
}

async function startSession(
  messages: MessageChannel,
  channel: SecureChannel,
  hello: ClientHello,
  address: string,
  ctx: ServerContext,
): Promise<void> {
  let name: string;
  try {
    name = normalizeUserName(hello.user);
  } catch (err) {
    // Throttled per address like any attempt, and logged without the attacker's text.
    const verdict = ctx.throttle.check('', address);
    if (!verdict.isAllowed) throw rateLimited(verdict.retryAfterMs);
    ctx.activity.server('login.failed', { user: '', detail: `address=${address} reason=invalid-name` });
    throw err;
  }
  const verdict = ctx.throttle.check(name, address);
  // Refusals by the rate limiter are not logged one by one: a flood must not grow the log.
  if (!verdict.isAllowed) throw rateLimited(verdict.retryAfterMs);

  const link = new ConnectionLink(messages);
  let session: LiveSession;
  let isResumed: boolean;
  if (hello.op === 'resume') {
    // A disabled account cannot come back through a session that outlived the disabling.
    const account = await ctx.accounts.get(name);
    if (account === undefined || account.isDisabled) {
      ctx.throttle.recordFailure(name, address);
      throw new SalaError('SALA_E_SESSION_UNKNOWN', 'That session has ended or belongs to another device; log in again.');
    }
    try {
      session = ctx.sessions.resume({
        sessionId: hello.sessionId ?? '',
        user: name,
        dhPk: channel.remoteStatic,
        sigPk: hello.sigPk,
        address,
        link,
      });
    } catch (err) {
      ctx.throttle.recordFailure(name, address);
      throw err;
    }
    isResumed = true;
  } else {
    let account;
    try {
      account = await ctx.accounts.authenticate(name, hello.password ?? '');
    } catch (err) {
      const code = err instanceof SalaError ? err.code : 'unknown';
      if (code === 'SALA_E_AUTH_FAILED') ctx.throttle.recordFailure(name, address);
      ctx.activity.server('login.failed', { user: name, detail: `address=${address} reason=${code}` });
      throw err;
    }
    // The peer may have gone while its password was being checked.
    if (messages.isClosed || channel.destroyed || channel.writableEnded) return;
    // An administrator may have disabled the account or changed its password meanwhile: the
    // record is read again, and create() follows in the same tick, before anything else can run.
    const current = await ctx.accounts.get(name);
    if (current === undefined || current.isDisabled || current.passwordChangedAt !== account.passwordChangedAt) {
      throw new SalaError('SALA_E_AUTH_FAILED', 'Unknown user or wrong password.');
    }
    try {
      session = ctx.sessions.create({ user: name, dhPk: channel.remoteStatic, sigPk: hello.sigPk, address, link });
    } catch (err) {
      if (err instanceof SessionLimitError) {
        ctx.activity.server('session.refused', {
          user: name,
          detail: `address=${address} live=${err.sessions.map((s) => s.sessionId).join(',')}`,
        });
      }
      throw err;
    }
    ctx.throttle.recordSuccess(name, address);
    isResumed = false;
  }
  link.session = session;
  // From here on the session must be detached when this connection goes, whatever happens next.
  messages.once('close', () => ctx.sessions.detach(session, link));
  if (messages.isClosed || channel.destroyed) {
    ctx.sessions.detach(session, link);
    return;
  }
  ctx.activity.server('login', { user: name, session: session.sessionId, detail: `address=${address} resumed=${isResumed}` });

  const generation = ctx.sessions.nextGeneration(session);
  // A large directory does not fit one frame: the welcome carries its first part, updates the rest.
  const directory = ctx.directory.snapshot();
  const revoked = ctx.tickets.active();
  try {
    messages.send({
      type: 'welcome',
      user: name,
      sessionId: session.sessionId,
      ticket: ctx.tickets.issue(session, generation),
      serverTimeMs: Date.now(),
      graceMs: ctx.limits.graceMs,
      renewInMs: ctx.limits.renewAfterMs,
      directory: directory.slice(0, MAX_DIRECTORY_ENTRIES),
      revoked: revoked.slice(0, MAX_REVOCATIONS),
      isResumed,
    });
    for (const update of directoryUpdates(directory.slice(MAX_DIRECTORY_ENTRIES), [])) messages.send(update);
    for (const revocation of revoked.slice(MAX_REVOCATIONS)) messages.send({ type: 'revoked', revocation });
  } catch {
    messages.destroy();
    return;
  }
  serveSession(messages, session, link, ctx);
}

/** The connection currently carrying a session; the registry closes it on kick, resume elsewhere… */
/** Ticket renewals closer together than this are ignored (the client renews every 30 minutes). */
const RENEW_MIN_INTERVAL_MS = 10_000;
/** Activity events one connection may store (DEFAULTS: 20 a second on average, bursts of 2,000). */
const LOG_EVENTS_PER_SECOND = DEFAULTS.activityEventsPerSecond;
const LOG_EVENT_BURST = DEFAULTS.activityEventBurst;

/** A token bucket counting activity events, so one account cannot grow the log without bound. */
class EventBudget {
  #tokens: number = LOG_EVENT_BURST;
  #lastMs = Date.now();

  take(count: number): boolean {
    const nowMs = Date.now();
    this.#tokens = Math.min(LOG_EVENT_BURST, this.#tokens + ((nowMs - this.#lastMs) / 1000) * LOG_EVENTS_PER_SECOND);
    this.#lastMs = nowMs;
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }
}

class ConnectionLink implements SessionLink, DirectorySubscriber {
  session: LiveSession | undefined;
  lastRenewalMs = 0;
  readonly logBudget = new EventBudget();
  readonly #messages: MessageChannel;

  constructor(messages: MessageChannel) {
    this.#messages = messages;
  }

  get sessionId(): string {
    return this.session?.sessionId ?? '';
  }

  send(message: WireMessage): void {
    this.sendEncoded(encodeMessage(message));
  }

  sendEncoded(encoded: Buffer): void {
    if (this.#messages.isClosed || this.#messages.channel.destroyed || this.#messages.channel.writableEnded) return;
    try {
      this.#messages.sendEncoded(encoded);
    } catch {
      // closed meanwhile, or disconnected for not reading: it resumes later or expires
    }
  }

  close(error?: SalaError): void {
    if (error === undefined) void this.#messages.close();
    else refuse(this.#messages, error);
  }
}

function serveSession(messages: MessageChannel, session: LiveSession, link: ConnectionLink, ctx: ServerContext): void {
  ctx.directory.subscribe(link);
  const guard = guardInbound(messages, {
    messagesPerSecond: ctx.limits.messagesPerSecond,
    burst: ctx.limits.messageBurst,
    idleTimeoutMs: ctx.limits.idleTimeoutMs,
    onFlood: () => {
      ctx.logger.warn('session.flood', { user: session.user, session: session.sessionId });
      refuse(messages, rateLimited(Math.ceil(1000 / ctx.limits.messagesPerSecond)));
    },
  });
  messages.on('message', (message: WireMessage) => {
    if (guard.isFlooded) return;
    handleSessionMessage(message, messages, session, link, ctx).catch((err: unknown) => {
      refuse(messages, toSalaError(err, 'SALA_E_BUSY', 'The server could not handle a request; reconnect.'));
    });
  });
  messages.once('close', () => {
    ctx.directory.unsubscribe(link);
  });
}

async function handleSessionMessage(
  message: WireMessage,
  messages: MessageChannel,
  session: LiveSession,
  link: ConnectionLink,
  ctx: ServerContext,
): Promise<void> {
  switch (message.type) {
    case 'announce':
      ctx.sessions.setEndpoints(session, usableEndpoints(message.addresses, session.address));
      return;
    case 'ticket.renew': {
      // Each renewal costs a signature and a write: at most one per RENEW_MIN_INTERVAL_MS.
      const nowMs = Date.now();
      if (nowMs - link.lastRenewalMs < RENEW_MIN_INTERVAL_MS) return;
      link.lastRenewalMs = nowMs;
      const generation = ctx.sessions.nextGeneration(session);
      link.send({
        type: 'ticket',
        ticket: ctx.tickets.issue(session, generation),
        serverTimeMs: Date.now(),
        renewInMs: ctx.limits.renewAfterMs,
      });
      return;
    }
    case 'log.batch': {
      if (!link.logBudget.take(message.events.length)) {
        refuse(messages, rateLimited(60_000));
        return;
      }
      const ids = await ctx.activity.fromPeer(session.user, session.sessionId, message.events);
      link.send({ type: 'log.ack', ids });
      return;
    }
    case 'group.join': {
      let name: string;
      try {
        name = normalizeUserName(message.group);
      } catch {
        link.send({
          type: 'group.left',
          group: message.group,
          code: 'SALA_E_INVALID_NAME',
          message: `"${message.group.slice(0, 40)}" is not a valid group name: use 2 to 32 letters a–z, digits, "_" or "-".`,
        });
        return;
      }
      try {
        ctx.groups.join(name, { sessionId: session.sessionId, user: session.user, sigPk: session.sigPk });
        ctx.activity.server('group.joined', { user: session.user, session: session.sessionId, detail: `group=${name}` });
      } catch (err) {
        const error = toSalaError(err, 'SALA_E_BUSY', 'The group could not be joined.');
        link.send({ type: 'group.left', group: name, code: error.code, message: error.message });
      }
      return;
    }
    case 'group.leave':
      if (ctx.groups.leave(message.group, session.sessionId)) {
        ctx.activity.server('group.left', { user: session.user, session: session.sessionId, detail: `group=${message.group}` });
      }
      return;
    case 'logout':
      ctx.activity.server('logout', { user: session.user, session: session.sessionId });
      ctx.sessions.end(session, 'logout'); // closes this connection gracefully
      return;
    case 'error':
      ctx.logger.info('peer.reported_error', { user: session.user, code: message.code });
      return;
    default:
      // A message only the server sends (welcome, directory.update…) is a protocol violation.
      refuse(messages, new SalaError('SALA_E_PROTOCOL_UNKNOWN_TYPE', `A peer may not send "${message.type}" to the server.`));
  }
}

/**
 * The endpoints worth publishing: IP literals only (never a name for others to resolve), no
 * unspecified or multicast addresses, port > 0, and loopback only from a peer on the server's own
 * machine (where the others are too). Everything else is dropped, not refused: addresses are hints.
 */
export function usableEndpoints(endpoints: readonly Endpoint[], peerAddress: string): Endpoint[] {
  const isPeerLocal = isLoopbackHost(peerAddress);
  return endpoints.filter(({ host, port }) => {
    const family = isIP(host);
    if (family === 0 || port === 0) return false;
    const lower = host.toLowerCase();
    if (lower === '0.0.0.0' || lower === '::') return false;
    if (family === 4 && Number(host.split('.')[0]) >= 224) return false;
    if (family === 6 && lower.startsWith('ff')) return false;
    return !isLoopbackHost(host) || isPeerLocal;
  });
}
