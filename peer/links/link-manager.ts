import { EventEmitter, once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  DEFAULTS,
  guardInbound,
  MessageChannel,
  SalaError,
  silentLogger,
  toSalaError,
  verifyTicket,
  type Endpoint,
  type Logger,
  type MessageOf,
  type SecureChannel,
  type SignedRevocation,
  type TicketClaims,
  type WireMessage,
  TICKET_CLOCK_SKEW_MS,
} from '../../common/index.js';
import { acceptLink, dialLink, type LinkCredentials } from './link-handshake.js';

/** One live, authenticated link to another peer's session. */
export interface PeerLink {
  /** The other side's session as its latest ticket vouches for it (renewed tickets replace it). */
  readonly peer: TicketClaims;
  readonly channel: SecureChannel;
  readonly messages: MessageChannel;
  /** True when this side dialled. */
  readonly isInitiator: boolean;
}

export interface LinkManagerEvents {
  'link.up': [link: PeerLink];
  'link.down': [link: PeerLink, error: SalaError | undefined];
  /** A revocation another peer passed on (unverified: the receiver checks the server's signature). */
  revoked: [revocation: SignedRevocation, from: PeerLink];
  warning: [warning: { code: string; message: string }];
}

export interface LinkManagerOptions {
  credentials: LinkCredentials;
  /** This peer's session id (from the welcome); it breaks ties between simultaneous dials. */
  mySessionId: () => string;
  host?: string;
  port?: number;
  maxLinks?: number;
  maxLinksPerIp?: number;
  handshakeTimeoutMs?: number;
  /** A ping this often; a link silent for three intervals is closed. */
  heartbeatIntervalMs?: number;
  /** Inbound traffic control per link (DEFAULTS.linkMessagesPerSecond / linkMessageBurst). */
  messagesPerSecond?: number;
  messageBurst?: number;
  /** How often links are checked for a peer ticket that ran out (default 10 s). */
  expiryCheckIntervalMs?: number;
  logger?: Logger;
}

const DEFAULT_MAX_LINKS = 256;
/** How often links are checked for a peer ticket that expired without a renewal. */
const DEFAULT_EXPIRY_CHECK_INTERVAL_MS = 10_000;

interface LiveLink extends PeerLink {
  peer: TicketClaims;
}
const DEFAULT_MAX_LINKS_PER_IP = 8;

/**
 * The direct links of one peer: a listener that accepts links from logged-in peers, a dialler that
 * tries a peer's announced addresses, and at most one link per pair of sessions. When both sides
 * dial each other at the same moment, both links complete; both sides then keep the one dialled by
 * the session with the smaller id and close the other, so they agree without talking about it.
 */
export class LinkManager extends EventEmitter<LinkManagerEvents> {
  readonly #options: LinkManagerOptions;
  readonly #server: Server;
  readonly #links = new Map<string, LiveLink>();
  readonly #sockets = new Set<Socket>();
  readonly #perIp = new Map<string, number>();
  readonly #log: Logger;
  readonly #expiryTimer: NodeJS.Timeout;
  #isClosed = false;

  private constructor(options: LinkManagerOptions, server: Server) {
    super();
    this.#options = options;
    this.#server = server;
    this.#log = options.logger ?? silentLogger;
    server.on('connection', (socket) => this.#onIncoming(socket));
    this.#expiryTimer = setInterval(() => this.#dropExpired(), options.expiryCheckIntervalMs ?? DEFAULT_EXPIRY_CHECK_INTERVAL_MS);
    this.#expiryTimer.unref();
  }

  /** Starts listening (all interfaces and an ephemeral port unless told otherwise). */
  static async listen(options: LinkManagerOptions): Promise<LinkManager> {
    const server = createServer();
    server.on('error', () => undefined);
    const manager = new LinkManager(options, server);
    server.listen(options.port ?? 0, options.host);
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw new SalaError('SALA_E_CONFIG_INVALID', `Cannot listen for peer links: ${String(err)}`, { cause: err });
      }),
    ]);
    return manager;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get(sessionId: string): PeerLink | undefined {
    return this.#links.get(sessionId);
  }

  /** A live link to any session of `user` (the most recently opened one). */
  toUser(user: string): PeerLink | undefined {
    let found: PeerLink | undefined;
    for (const link of this.#links.values()) if (link.peer.user === user && !link.messages.isClosed) found = link;
    return found;
  }

  links(): PeerLink[] {
    return [...this.#links.values()];
  }

  /**
   * Returns the link to that session, dialling its addresses one after another if there is none.
   * Rejects with the last failure (SALA_E_CONNECTION_FAILED, SALA_E_TICKET_INVALID, …).
   */
  async connect(
    expectedUser: string,
    sessionId: string | undefined,
    endpoints: readonly Endpoint[],
    options: { signal?: AbortSignal } = {},
  ): Promise<PeerLink> {
    // Without a session id (an mDNS sighting while the server is away) any link to the user will do.
    const existing = sessionId === undefined ? this.toUser(expectedUser) : this.#links.get(sessionId);
    if (existing !== undefined) return existing;
    if (endpoints.length === 0) throw new SalaError('SALA_E_CONNECTION_FAILED', `${expectedUser} has announced no address to reach them at.`);
    let lastError: SalaError | undefined;
    for (const endpoint of endpoints) {
      options.signal?.throwIfAborted();
      try {
        const { channel, peer } = await dialLink({
          host: endpoint.host,
          port: endpoint.port,
          expectedUser,
          credentials: this.#options.credentials,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(this.#options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: this.#options.handshakeTimeoutMs }),
        });
        const link = this.#adopt(channel, peer, true);
        if (link !== undefined) return link;
        // We lost a simultaneous-dial tie: the other link is the one to use.
        const winner = this.#links.get(peer.sid);
        if (winner !== undefined) return winner;
      } catch (err) {
        lastError = toSalaError(err, 'SALA_E_CONNECTION_FAILED', `Could not reach ${expectedUser}.`);
        // A peer that proves it is someone else is not worth another address.
        if (lastError.code === 'SALA_E_TICKET_INVALID') break;
      }
    }
    throw lastError ?? new SalaError('SALA_E_CONNECTION_FAILED', `Could not reach ${expectedUser}.`);
  }

  /** Closes every link of a session (revoked, logged out) and reports why. */
  drop(sessionId: string, error: SalaError): void {
    const link = this.#links.get(sessionId);
    if (link === undefined) return;
    link.messages.destroy(error);
  }

  /** Sends every link our renewed ticket, so links outlive the ticket shown in their handshake. */
  pushTicket(): void {
    const ticket = this.#options.credentials.ticket();
    for (const link of this.#links.values()) sendOnLink(link, { type: 'link.ticket', ticket: { body: ticket.body, sig: ticket.sig } });
  }

  /** Passes a (verified) revocation on to every link but the one it came from. */
  forwardRevocation(revocation: SignedRevocation, except?: PeerLink): void {
    for (const link of this.#links.values()) {
      if (link !== except) sendOnLink(link, { type: 'revoked', revocation: { body: revocation.body, sig: revocation.sig } });
    }
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    clearInterval(this.#expiryTimer);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.all([...this.#links.values()].map((link) => link.messages.close()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #onIncoming(socket: Socket): void {
    socket.on('error', () => undefined);
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    const maxLinks = this.#options.maxLinks ?? DEFAULT_MAX_LINKS;
    if (this.#isClosed || this.#sockets.size >= maxLinks || fromIp >= (this.#options.maxLinksPerIp ?? DEFAULT_MAX_LINKS_PER_IP)) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    this.#perIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    });
    acceptLink(socket, {
      credentials: this.#options.credentials,
      ...(this.#options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: this.#options.handshakeTimeoutMs }),
    }).then(
      ({ channel, peer }) => void this.#adopt(channel, peer, false),
      (err: unknown) => this.#log.info('link.refused', { code: err instanceof SalaError ? err.code : 'unknown' }),
    );
  }

  /**
   * Registers a fresh link, or closes it when a link to the same session already exists and the
   * tie-break prefers that one. Returns the registered link, or undefined when this one lost.
   */
  #adopt(channel: SecureChannel, peer: TicketClaims, isInitiator: boolean): PeerLink | undefined {
    const messages = new MessageChannel(channel);
    const link: LiveLink = { peer, channel, messages, isInitiator };
    // The first failure is the reason link.down reports (a bad message, a flood, a dead socket).
    let failure: SalaError | undefined;
    messages.on('error', (error) => {
      failure ??= error;
    });
    if (this.#isClosed) {
      void messages.close();
      return undefined;
    }
    const existing = this.#links.get(peer.sid);
    if (existing !== undefined) {
      if (this.#prefers(existing, link)) {
        void messages.close();
        return undefined;
      }
      this.#links.delete(peer.sid);
      void existing.messages.close();
    }
    this.#links.set(peer.sid, link);
    this.#serve(link);
    messages.once('close', () => {
      if (this.#links.get(peer.sid) === link) this.#links.delete(peer.sid);
      this.emit('link.down', link, failure ?? (channel.errored instanceof SalaError ? channel.errored : undefined));
    });
    this.emit('link.up', link);
    return link;
  }

  /** Traffic control, heartbeat and the link's own control messages (tickets, revocations). */
  #serve(link: LiveLink): void {
    const { messages } = link;
    const perSecond = this.#options.messagesPerSecond ?? DEFAULTS.linkMessagesPerSecond;
    const heartbeatMs = this.#options.heartbeatIntervalMs ?? DEFAULTS.linkHeartbeatIntervalMs;
    const guard = guardInbound(messages, {
      messagesPerSecond: perSecond,
      burst: this.#options.messageBurst ?? DEFAULTS.linkMessageBurst,
      idleTimeoutMs: heartbeatMs * 3,
      // File data and its credit grants scale with throughput and are bounded by the transfer
      // itself (peer/files: chunks within credit, grants of at least 16 KiB), not by this count.
      isCounted: (message) => message.type !== 'file.chunk' && message.type !== 'file.credit',
      onFlood: () => {
        this.#log.warn('link.flood', { user: link.peer.user, session: link.peer.sid });
        const error = new SalaError('SALA_E_RATE_LIMIT', `${link.peer.user} sent more than ${perSecond} messages a second; the link was closed.`);
        sendOnLink(link, { type: 'error', code: error.code, message: error.message, retryAfterMs: 1_000 });
        messages.destroy(error);
      },
    });
    // Messages over the limit go no further than this listener: later ones are never handed on.
    messages.on('message', (message) => {
      if (guard.isFlooded) return;
      if (message.type === 'link.ticket') this.#renewPeerTicket(link, message);
      else if (message.type === 'revoked') this.emit('revoked', message.revocation, link);
    });
    const heartbeat = setInterval(() => {
      messages.ping(undefined, { signal: AbortSignal.timeout(heartbeatMs) }).catch(() => undefined);
    }, heartbeatMs);
    heartbeat.unref();
    messages.once('close', () => clearInterval(heartbeat));
  }

  /** Accepts a renewed ticket only for the same user, session and device key, signed by our server. */
  #renewPeerTicket(link: LiveLink, message: MessageOf<'link.ticket'>): void {
    const credentials = this.#options.credentials;
    try {
      const claims = verifyTicket(message.ticket, {
        serverSigningKey: credentials.serverSigningKey,
        nowMs: credentials.serverNow(),
        expectedDhPk: link.peer.dhPk,
        expectedUser: link.peer.user,
        isRevoked: (sid) => credentials.isRevoked(sid),
      });
      if (claims.sid !== link.peer.sid || claims.generation < link.peer.generation) throw new Error('not a renewal of this session');
      link.peer = claims;
    } catch (err) {
      this.#log.warn('link.ticket_refused', { user: link.peer.user, message: err instanceof Error ? err.message : String(err) });
      link.messages.destroy(new SalaError('SALA_E_TICKET_INVALID', `${link.peer.user} presented an invalid renewed ticket; the link was closed.`));
    }
  }

  /** Links whose peer's ticket ran out (no renewal arrived: the session ended) are closed. */
  #dropExpired(): void {
    const nowMs = this.#options.credentials.serverNow();
    for (const link of this.#links.values()) {
      if (nowMs - TICKET_CLOCK_SKEW_MS >= link.peer.notAfterMs) {
        link.messages.destroy(new SalaError('SALA_E_TICKET_INVALID', `The session ticket of ${link.peer.user} expired; the link was closed.`));
      }
    }
  }

  /**
   * Whether to keep `existing` over `fresh`. Both sides keep the link dialled by the session with
   * the smaller id; a second link dialled by the same side replaces the first (which is probably
   * half-dead, or it would not have dialled again).
   */
  #prefers(existing: PeerLink, fresh: PeerLink): boolean {
    const initiatorOf = (link: PeerLink): string => (link.isInitiator ? this.#options.mySessionId() : link.peer.sid);
    const kept = initiatorOf(existing);
    const offered = initiatorOf(fresh);
    return kept !== offered && kept < offered;
  }
}

/** Sends on a link unless it is closing (its own close handling reports that). */
export function sendOnLink(link: PeerLink, message: WireMessage): void {
  if (link.messages.isClosed) return;
  try {
    link.messages.send(message);
  } catch {
    // closing: the link's own close handling reports it
  }
}
