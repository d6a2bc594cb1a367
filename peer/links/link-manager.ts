import { EventEmitter, once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  MessageChannel,
  SalaError,
  silentLogger,
  toSalaError,
  type Endpoint,
  type Logger,
  type SecureChannel,
  type TicketClaims,
} from '../../common/index.js';
import { acceptLink, dialLink, type LinkCredentials } from './link-handshake.js';

/** One live, authenticated link to another peer's session. */
export interface PeerLink {
  readonly peer: TicketClaims;
  readonly channel: SecureChannel;
  readonly messages: MessageChannel;
  /** True when this side dialled. */
  readonly isInitiator: boolean;
}

export interface LinkManagerEvents {
  'link.up': [link: PeerLink];
  'link.down': [link: PeerLink, error: SalaError | undefined];
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
  logger?: Logger;
}

const DEFAULT_MAX_LINKS = 256;
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
  readonly #links = new Map<string, PeerLink>();
  readonly #sockets = new Set<Socket>();
  readonly #perIp = new Map<string, number>();
  readonly #log: Logger;
  #isClosed = false;

  private constructor(options: LinkManagerOptions, server: Server) {
    super();
    this.#options = options;
    this.#server = server;
    this.#log = options.logger ?? silentLogger;
    server.on('connection', (socket) => this.#onIncoming(socket));
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

  links(): PeerLink[] {
    return [...this.#links.values()];
  }

  /**
   * Returns the link to that session, dialling its addresses one after another if there is none.
   * Rejects with the last failure (SALA_E_CONNECTION_FAILED, SALA_E_TICKET_INVALID, …).
   */
  async connect(expectedUser: string, sessionId: string, endpoints: readonly Endpoint[], options: { signal?: AbortSignal } = {}): Promise<PeerLink> {
    const existing = this.#links.get(sessionId);
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

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
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
    const link: PeerLink = { peer, channel, messages, isInitiator };
    messages.on('error', () => undefined);
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
    messages.once('close', () => {
      if (this.#links.get(peer.sid) === link) this.#links.delete(peer.sid);
      this.emit('link.down', link, channel.errored instanceof SalaError ? channel.errored : undefined);
    });
    this.emit('link.up', link);
    return link;
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
