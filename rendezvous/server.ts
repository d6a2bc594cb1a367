import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  ConfigInvalidError,
  DataDirLock,
  SalaError,
  type DataDirLockOptions,
  DEFAULTS,
  ensurePrivateDir,
  fingerprint,
  initCrypto,
  isLoopbackHost,
  loadOrCreateIdentity,
  readSavedRecords,
  silentLogger,
  writePrivateFileAsync,
  type Logger,
} from '../common/index.js';
import { Accounts } from './accounts.js';
import { ActivityLog } from './activity-log.js';
import { createAdminBackend } from './admin-backend.js';
import { startAdminApi, type AdminApi } from './admin/admin-api.js';
import { PasswordHasher, type PasswordHasherOptions } from './auth/password-hasher.js';
import { AUTH_LIMITS, ConnectionCounter, KeyedTokenBucket, LoginThrottle, type LoginThrottleOptions } from './auth/rate-limiter.js';
import { Directory } from './directory.js';
import { GROUPS_FILE, GroupRegistry, parseSavedGroup } from './groups.js';
import { MdnsAdvertiser } from './mdns-advertiser.js';
import { clientAddress, serveConnection, type ConnectionLimits, type LoginGate, type ServerContext } from './peer-connection.js';
import { SERVER_KEY_FILE } from './server-identity.js';
import { SessionRegistry, type LiveSession, type SessionEndReason } from './sessions.js';
import { openNedbStore } from './store/nedb-store.js';
import type { Store } from './store/store.js';
import { TicketAuthority } from './ticket-authority.js';

export interface RendezvousServerOptions {
  dataDir: string;
  /** Peer protocol address; loopback unless told otherwise (a classroom server passes its LAN address or 0.0.0.0). */
  host?: string;
  port?: number;
  adminPort?: number;
  isMdnsEnabled?: boolean;
  isSelfRegistrationOpen?: boolean;
  logger?: Logger;
  /** Lower argon2 cost for tests; production uses the interactive defaults. */
  passwordHashing?: PasswordHasherOptions;
  limits?: Partial<ConnectionLimits> & { maxSessionsPerUser?: number; maxConnectionsPerIp?: number; maxConnections?: number };
  /** Login rate limits (defaults: AUTH_LIMITS). */
  throttle?: LoginThrottleOptions;
  /**
   * Whether logins from the server's own machine (loopback) are rate-limited too. Off by default:
   * a TCP connection from 127.0.0.0/8 or ::1 cannot come from the LAN (the kernel drops such
   * source addresses on other interfaces), and whoever is on the server's machine already owns it.
   * Tests of the limits switch it on.
   */
  isLoopbackThrottled?: boolean;
}

export interface ListeningInfo {
  host: string;
  port: number;
  adminPort: number;
  fingerprint: string;
}

/** One server per data dir: NeDB must never be written by two processes. */
export const SERVER_LOCK: DataDirLockOptions = {
  fileName: 'server.lock',
  inUse: (owner, dataDir, lockPath) =>
    new SalaError(
      'SALA_E_SERVER_RUNNING',
      owner === undefined
        ? 'Another server took the data directory at the same moment.'
        : `Another Sala server (pid ${owner.pid}) is already running with the data directory ${dataDir}. ` +
          `Stop it first, or start this one with a different --data folder. If no Sala server is running, delete ${lockPath}.`,
    ),
};

/**
 * The rendezvous server: accounts, sessions, directory, tickets, activity log, admin API and mDNS
 * announcement, around one TCP listener for peers. `start()` returns once everything listens;
 * `close()` stops accepting, keeps sessions for the next start (peers resume them), flushes the
 * database and releases the data dir.
 */
export class RendezvousServer {
  readonly info: ListeningInfo;
  readonly dataDir: string;
  readonly sessions: SessionRegistry;
  readonly accounts: Accounts;
  readonly #tcp: Server;
  readonly #sockets = new Set<Socket>();
  readonly #store: Store;
  readonly #hasher: PasswordHasher;
  readonly #directory: Directory;
  readonly #groups: GroupRegistry;
  readonly #admin: AdminApi;
  readonly #mdns: MdnsAdvertiser | undefined;
  readonly #lock: DataDirLock;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  private constructor(parts: {
    info: ListeningInfo;
    dataDir: string;
    sessions: SessionRegistry;
    accounts: Accounts;
    tcp: Server;
    sockets: Set<Socket>;
    store: Store;
    hasher: PasswordHasher;
    directory: Directory;
    groups: GroupRegistry;
    admin: AdminApi;
    mdns: MdnsAdvertiser | undefined;
    lock: DataDirLock;
    logger: Logger;
  }) {
    this.info = parts.info;
    this.dataDir = parts.dataDir;
    this.sessions = parts.sessions;
    this.accounts = parts.accounts;
    this.#tcp = parts.tcp;
    this.#sockets = parts.sockets;
    this.#store = parts.store;
    this.#hasher = parts.hasher;
    this.#directory = parts.directory;
    this.#groups = parts.groups;
    this.#admin = parts.admin;
    this.#mdns = parts.mdns;
    this.#lock = parts.lock;
    this.#log = parts.logger;
  }

  static async start(options: RendezvousServerOptions): Promise<RendezvousServer> {
    const logger = options.logger ?? silentLogger;
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? DEFAULTS.serverPort;
    validatePort('port', port);
    validatePort('adminPort', options.adminPort ?? DEFAULTS.adminPort);
    await initCrypto();
    ensurePrivateDir(options.dataDir);
    const lock = DataDirLock.acquire(options.dataDir, SERVER_LOCK);
    const cleanups: (() => Promise<void> | void)[] = [() => lock.release()];
    try {
      // Never regenerated when unreadable: SALA_E_KEY_UNREADABLE stops the start (SECURITY.md test 18).
      const { identity, isNew } = loadOrCreateIdentity(join(options.dataDir, SERVER_KEY_FILE));
      const fp = fingerprint(identity.signing.publicKey);
      logger.info(isNew ? 'server.key_created' : 'server.key_loaded', { fingerprint: fp });

      const store = await openNedbStore(options.dataDir, { logger });
      cleanups.push(() => store.close());
      const hasher = new PasswordHasher(options.passwordHashing ?? {});
      cleanups.push(() => hasher.close());

      const limits: ConnectionLimits = {
        isSelfRegistrationOpen: options.isSelfRegistrationOpen ?? true,
        handshakeTimeoutMs: DEFAULTS.handshakeTimeoutMs,
        graceMs: DEFAULTS.sessionGraceMs,
        renewAfterMs: DEFAULTS.ticketRenewAfterMs,
        idleTimeoutMs: DEFAULTS.serverIdleTimeoutMs,
        messagesPerSecond: DEFAULTS.sessionMessagesPerSecond,
        messageBurst: DEFAULTS.sessionMessageBurst,
        ...options.limits,
      };
      const sessions = new SessionRegistry({
        store: store.sessions,
        maxPerUser: options.limits?.maxSessionsPerUser ?? DEFAULTS.maxSessionsPerUser,
        graceMs: limits.graceMs,
        logger,
      });
      await sessions.load();
      const accounts = new Accounts({ users: store.users, hasher, logger });
      const directory = new Directory(sessions, { batchMs: DEFAULTS.directoryBatchMs });
      const tickets = new TicketAuthority({ identity, dataDir: options.dataDir, ticketLifetimeMs: DEFAULTS.ticketLifetimeMs, logger });
      const activity = new ActivityLog(store.logs, logger);
      // Groups, their keys and members are saved (owner-only, like the server key) so that a restart
      // keeps them: peers that resume their sessions go on in the same groups with the same keys.
      const groupsFile = join(options.dataDir, GROUPS_FILE);
      const groups = new GroupRegistry((sessionId, message) => sessions.get(sessionId)?.link?.send(message), {}, {
        save: (saved) => writePrivateFileAsync(groupsFile, JSON.stringify(saved)),
        onError: (err) => logger.error('groups.save_failed', { message: String(err) }),
      });
      groups.restore(
        readSavedRecords(groupsFile, parseSavedGroup, () => logger.warn('groups.bad_record')),
        (sessionId) => sessions.get(sessionId) !== undefined,
      );
      const ctx: ServerContext = {
        identity,
        accounts,
        sessions,
        directory,
        tickets,
        activity,
        groups,
        throttle: loginGate(new LoginThrottle(options.throttle ?? {}), options.isLoopbackThrottled ?? false),
        limits,
        logger,
      };
      wireRevocations(sessions, directory, ctx);

      const sockets = new Set<Socket>();
      const tcp = listenForPeers(ctx, sockets, {
        maxConnections: options.limits?.maxConnections ?? DEFAULTS.maxServerConnections,
        maxConnectionsPerIp: options.limits?.maxConnectionsPerIp ?? AUTH_LIMITS.connectionsPerIp,
        isLoopbackThrottled: options.isLoopbackThrottled ?? false,
      });
      tcp.listen(port, host);
      await Promise.race([once(tcp, 'listening'), once(tcp, 'error').then(([err]) => Promise.reject(listenError(err, host, port)))]);
      cleanups.push(() => new Promise<void>((resolve) => tcp.close(() => resolve())));
      const boundPort = (tcp.address() as AddressInfo).port;

      const admin = await startAdminApi({
        backend: createAdminBackend({ accounts, sessions, activity, store: store.logs, tickets, ctx }),
        dataDir: options.dataDir,
        port: options.adminPort ?? DEFAULTS.adminPort,
        logger,
      });
      cleanups.push(() => admin.close());

      const isLoopback = isLoopbackHost(host);
      const mdns =
        options.isMdnsEnabled === false || isLoopback
          ? undefined
          : new MdnsAdvertiser({ port: boundPort, fingerprint: fp, ...(host === '0.0.0.0' || host === '::' ? {} : { bindAddress: host }), logger });

      const info: ListeningInfo = { host, port: boundPort, adminPort: admin.port, fingerprint: fp };
      logger.info('server.listening', { host, port: boundPort, adminPort: admin.port, fingerprint: fp, mdns: mdns !== undefined });
      return new RendezvousServer({ info, dataDir: options.dataDir, sessions, accounts, tcp, sockets, store, hasher, directory, groups, admin, mdns, lock, logger });
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await cleanup();
      throw err;
    }
  }

  /** Stops the server. Sessions are kept (saved) so that peers resume them after the next start. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#log.info('server.stopping');
    const tcpClosed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    this.sessions.suspendAll();
    this.#directory.close();
    for (const socket of this.#sockets) socket.destroy();
    await tcpClosed;
    await this.#mdns?.close();
    await this.#admin.close();
    await this.#hasher.close();
    await this.#groups.idle();
    await this.#store.close();
    this.#lock.release();
    this.#log.info('server.stopped');
  }
}

function validatePort(option: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigInvalidError(option, 'must be a port number from 0 to 65535');
}

function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : String(err);
  return new ConfigInvalidError('port', `cannot listen on ${host}:${port}: ${why}`);
}

/** The peer listener: global and per-IP connection caps before any crypto is done. */
/**
 * New connections per source address: each costs a key generation, two X25519 and a handshake
 * before anything is known about the peer, so a host may open 10 a second (bursts of 30). Loopback
 * is exempt unless loopback throttling is on (it cannot come from the LAN).
 */
const NEW_CONNECTIONS_PER_IP = Object.freeze({ capacity: 30, refillPerSecond: 10, maxKeys: 10_000 });

function listenForPeers(
  ctx: ServerContext,
  sockets: Set<Socket>,
  caps: { maxConnections: number; maxConnectionsPerIp: number; isLoopbackThrottled: boolean },
): Server {
  const perIp = new ConnectionCounter(caps.maxConnectionsPerIp);
  const arrivals = new KeyedTokenBucket(NEW_CONNECTIONS_PER_IP);
  const tcp = createServer((socket) => {
    socket.on('error', () => undefined);
    const address = clientAddress(socket);
    const isArrivalAllowed = (!caps.isLoopbackThrottled && isLoopbackHost(address)) || arrivals.take(address).isAllowed;
    if (!isArrivalAllowed || sockets.size >= caps.maxConnections || !perIp.tryOpen(address)) {
      ctx.logger.warn('connection.refused', { address, reason: 'connection cap' });
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      perIp.close(address);
    });
    serveConnection(socket, ctx).catch((err: unknown) => {
      ctx.logger.error('connection.crashed', { address, message: String(err) });
      socket.destroy();
    });
  });
  tcp.on('error', (err) => ctx.logger.error('server.error', { message: err.message }));
  return tcp;
}

/**
 * A session ended by the administrator (kick, disable, password change) is revoked: the signed
 * revocation goes to every connected peer, which drops that session's links and passes it on.
 * A session that merely expired is not: its peer may still be talking to others during an outage.
 */
function wireRevocations(sessions: SessionRegistry, directory: Directory, ctx: ServerContext): void {
  sessions.on('offline', (session: LiveSession, reason: SessionEndReason) => {
    // Whoever leaves, for whatever reason, leaves their groups: the others get a new key.
    ctx.groups.removeSession(session.sessionId);
    if (reason === 'expired') {
      ctx.activity.server('session.expired', { user: session.user, session: session.sessionId });
      return;
    }
    // A plain logout is announced by the directory; only an administrator's decision is revoked
    // (kept for an hour and replayed to every login, so revocations must stay few).
    if (reason === 'logout') return;
    directory.broadcast({ type: 'revoked', revocation: ctx.tickets.revoke(session, reason) });
  });
}


function loginGate(throttle: LoginThrottle, isLoopbackThrottled: boolean): LoginGate {
  if (isLoopbackThrottled) return throttle;
  return {
    check: (user, ip, nowMs) => (isLoopbackHost(ip) ? { isAllowed: true } : throttle.check(user, ip, nowMs)),
    recordFailure: (user, ip, nowMs) => {
      if (!isLoopbackHost(ip)) throttle.recordFailure(user, ip, nowMs);
    },
    recordSuccess: (user, ip) => {
      if (!isLoopbackHost(ip)) throttle.recordSuccess(user, ip);
    },
  };
}
