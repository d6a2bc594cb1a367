import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import {
  DataDirLock,
  ensurePrivateDir,
  fingerprint,
  initCrypto,
  loadOrCreateIdentity,
  normalizeUserName,
  SalaError,
  silentLogger,
  toSalaError,
  verifyRevocation,
  type Identity,
  type Logger,
  type MessageOf,
  type SignedRevocation,
} from '../common/index.js';
import { ChatHistory } from './chat/chat-history.js';
import { ChatService } from './chat/chat-service.js';
import { DEVICE_KEY_FILE } from './device-identity.js';
import { FileService } from './files/file-service.js';
import { GroupLinkRelay } from './groups/group-link-relay.js';
import { GroupService } from './groups/group-service.js';
import { chooseMulticastInterface } from './groups/multicast-interface.js';
import { MulticastSocket } from './groups/multicast-socket.js';
import { PeerDiscovery } from './discovery/index.js';
import { LinkManager, type PeerLink } from './links/link-manager.js';
import { endpointsToAnnounce, isMdnsUseful } from './listen-endpoints.js';
import { Redialer } from './redialer.js';
import { ActivityOutbox } from './rendezvous/activity-outbox.js';
import { RendezvousClient } from './rendezvous/rendezvous-client.js';
import { ServerPins } from './rendezvous/server-pins.js';
import {
  checkedRecipient,
  DEFAULT_FILE_OFFER_TIMEOUT_MS,
  defaultDownloadsDir,
  FIRST_DIAL_TIMEOUT_MS,
  peerLock,
  REDIAL_TIMEOUT_MS,
  userDir,
  type HistoryEntry,
  type PeerEvents,
  type PeerOptions,
} from './peer-options.js';
import { PeerRoster, type DialTarget, type PeerInfo } from './roster.js';

export type { HistoryEntry, PeerEvents, PeerOptions, PeerTuning } from './peer-options.js';
export { defaultDownloadsDir } from './peer-options.js';
import { chooseServer } from './server-selection.js';

/**
 * A logged-in Sala peer: its rendezvous session, its direct links, its mDNS presence, 1:1 chat and
 * the activity log — one object with typed events that the CLI, the demo and the tests drive.
 * Chat goes over direct encrypted links only; the server vouches for who is who (tickets) and keeps
 * the directory, but never sees a message.
 */
export class Peer extends EventEmitter<PeerEvents> {
  readonly user: string;
  readonly sessionId: string;
  readonly serverFingerprint: string;
  readonly listen: { host: string; port: number };
  readonly deviceFingerprint: string;
  readonly #client: RendezvousClient;
  readonly #links: LinkManager;
  readonly #chat: ChatService;
  readonly #files: FileService;
  readonly #groups: GroupService;
  readonly #groupRelay: GroupLinkRelay;
  /** The IPv4 address group chat multicasts on; undefined: groups go over direct links only. */
  readonly multicastInterface: string | undefined;
  readonly #history: ChatHistory;
  readonly #discovery: PeerDiscovery;
  readonly #roster: PeerRoster;
  readonly #outbox: ActivityOutbox;
  readonly #redialer: Redialer;
  readonly #lock: DataDirLock;
  /** Sessions the server revoked: their tickets are refused on links (shared with the LinkManager). */
  readonly #revoked: Set<string>;
  readonly #log: Logger;
  /** Dials in progress on behalf of send(), one per user. */
  readonly #linking = new Map<string, Promise<void>>();
  readonly #warnedAt = new Map<string, number>();
  #closing: Promise<void> | undefined;

  private constructor(parts: {
    client: RendezvousClient;
    links: LinkManager;
    history: ChatHistory;
    outbox: ActivityOutbox;
    lock: DataDirLock;
    identity: Identity;
    options: PeerOptions;
    listenHost: string;
    revoked: Set<string>;
    multicastInterface: string | undefined;
  }) {
    super();
    const { client, links, options } = parts;
    this.#client = client;
    this.#links = links;
    this.#history = parts.history;
    this.#outbox = parts.outbox;
    this.#lock = parts.lock;
    this.#revoked = parts.revoked;
    this.#log = options.logger ?? silentLogger;
    this.user = client.user ?? normalizeUserName(options.user);
    this.sessionId = client.sessionId ?? '';
    this.serverFingerprint = client.serverFingerprint ?? '';
    this.listen = { host: parts.listenHost, port: links.port };
    this.deviceFingerprint = fingerprint(parts.identity.signing.publicKey);
    this.#roster = new PeerRoster(this.user);
    this.#chat = new ChatService({
      me: this.user,
      history: this.#history,
      linkTo: (user) => this.#links.toUser(user),
      now: () => this.#client.clock.now(),
      logger: this.#log,
    });
    const dataDir = options.dataDir;
    this.#files = new FileService(
      {
        me: this.user,
        path: (name) => join(userDir(dataDir, this.user), name),
        linkTo: (user) => this.#links.toUser(user),
        requestLink: (user) => this.#redialer.poke(user),
        emit: (event, ...args) => (this.emit as (name: string, ...values: unknown[]) => boolean)(event, ...args),
        record: (event, detail) => this.#record(event, detail),
        offerTimeoutMs: options.tuning?.fileOfferTimeoutMs ?? DEFAULT_FILE_OFFER_TIMEOUT_MS,
        logger: this.#log,
      },
      {
        downloadsDir: options.downloadsDir ?? defaultDownloadsDir(),
        isAutoAccept: options.isAutoAcceptFiles === true,
        maxFileBytes: options.maxFileBytes ?? Number.MAX_SAFE_INTEGER,
        ...(options.tuning?.fileWindowBytes === undefined ? {} : { windowBytes: options.tuning.fileWindowBytes }),
      },
    );
    this.#redialer = new Redialer({
      attempt: (user) => this.#reach(user),
      ...(options.tuning?.redialInitialDelayMs === undefined ? {} : { initialDelayMs: options.tuning.redialInitialDelayMs }),
      ...(options.tuning?.redialMaxDelayMs === undefined ? {} : { maxDelayMs: options.tuning.redialMaxDelayMs }),
    });
    this.multicastInterface = parts.multicastInterface;
    this.#groupRelay = new GroupLinkRelay({
      linkTo: (sessionId) => this.#links.get(sessionId),
      dial: (user, sessionId) => this.#dialSession(user, sessionId),
      onDatagram: (datagram) => this.#groups.receiveFromLink(datagram),
      logger: this.#log,
    });
    this.#groups = new GroupService({
      ...options.tuning?.group,
      me: { user: this.user, get sessionId() { return client.sessionId ?? ''; }, signingKey: parts.identity.signing.privateKey },
      rendezvous: client,
      openSocket: (port) => this.#openMulticastSocket(port),
      serverNow: () => client.clock.now(),
      sendOverLinks: (_group, datagram, members) => this.#groupRelay.send(datagram, members),
      logger: this.#log,
    });
    const interfaceAddress = options.interfaceAddress;
    this.#discovery = new PeerDiscovery({
      user: this.user,
      deviceFingerprint: this.deviceFingerprint,
      port: links.port,
      interfaceAddress,
      isMdnsEnabled: (options.isMdnsEnabled ?? true) && isMdnsUseful(parts.listenHost, interfaceAddress),
      logger: this.#log,
      ttlMs: options.tuning?.mdnsTtlMs,
    });
  }

  /**
   * Logs in and starts everything: finds the server (mDNS unless given), checks its key, logs in,
   * listens for links, announces itself, and delivers whatever waited in the outbox. Rejects with
   * the login's SalaError (SALA_E_AUTH_FAILED, SALA_E_SESSION_LIMIT, SALA_E_SERVER_KEY_MISMATCH…).
   */
  static async connect(options: PeerOptions): Promise<Peer> {
    await initCrypto();
    options.signal?.throwIfAborted();
    const user = normalizeUserName(options.user);
    ensurePrivateDir(options.dataDir);
    const lock = DataDirLock.acquire(options.dataDir, peerLock(user));
    const cleanups: (() => Promise<void> | void)[] = [() => lock.release()];
    try {
      const { identity } = loadOrCreateIdentity(join(options.dataDir, DEVICE_KEY_FILE));
      const pins = new ServerPins(options.dataDir);
      const server = await chooseServer({
        server: options.server,
        isMdnsEnabled: options.isMdnsEnabled,
        pins,
        identity,
        serverKey: options.serverKey,
        askForCode: options.askForCode,
        interfaceAddress: options.interfaceAddress,
        timeoutMs: options.tuning?.serverDiscoveryTimeoutMs,
        signal: options.signal,
        logger: options.logger,
      });
      const dir = userDir(options.dataDir, user);
      ensurePrivateDir(dir);
      const history = await ChatHistory.open(dir, options.logger ?? silentLogger);
      cleanups.push(() => history.close());
      const outbox = new ActivityOutbox({ path: join(dir, 'activity-outbox.json'), ...(options.logger === undefined ? {} : { logger: options.logger }) });
      const client = new RendezvousClient({
        ...server,
        user,
        identity,
        outbox,
        ...(options.logger === undefined ? {} : { logger: options.logger }),
        ...(options.tuning?.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.tuning.heartbeatIntervalMs }),
        ...(options.tuning?.reconnectBackoff === undefined ? {} : { backoff: options.tuning.reconnectBackoff }),
      });
      const welcome = await client.login(options.password, options.signal === undefined ? {} : { signal: options.signal });
      cleanups.push(() => client.logout());
      if (client.serverFingerprint !== undefined) pins.remember(client.serverFingerprint, server.host, server.port);

      const listenHost = options.listenHost ?? '0.0.0.0';
      const serverSigningKey = client.serverSigningKey;
      if (serverSigningKey === undefined) throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The server did not prove its signing key.');
      const revoked = new Set<string>();
      const links = await LinkManager.listen({
        credentials: {
          identity,
          ticket: () => {
            const ticket = client.ticket;
            if (ticket === undefined) throw new SalaError('SALA_E_TICKET_INVALID', 'This peer has no session ticket.');
            return ticket;
          },
          serverSigningKey,
          serverNow: () => client.clock.now(),
          isRevoked: (sid) => revoked.has(sid),
        },
        mySessionId: () => welcome.sessionId,
        host: listenHost,
        ...(options.listenPort === undefined ? {} : { port: options.listenPort }),
        ...(options.tuning?.linkHeartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.tuning.linkHeartbeatIntervalMs }),
        ...(options.tuning?.linkMessagesPerSecond === undefined ? {} : { messagesPerSecond: options.tuning.linkMessagesPerSecond }),
        ...(options.tuning?.linkMessageBurst === undefined ? {} : { messageBurst: options.tuning.linkMessageBurst }),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
      const multicastInterface = options.tuning?.isMulticastDisabled === true
        ? undefined
        : await chooseMulticastInterface({ interfaceAddress: options.interfaceAddress, server, logger: options.logger });
      const peer = new Peer({ client, links, history, outbox, lock, identity, options, listenHost, revoked, multicastInterface });
      await peer.#start(welcome, options);
      return peer;
    } catch (err) {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch {
          // the original failure is the one to report
        }
      }
      throw err;
    }
  }

  /** Every other known user, online or not (CONTRACT.md `peers`). */
  peers(): PeerInfo[] {
    return this.#roster.list();
  }

  /**
   * Stores and sends a 1:1 message; resolves with its id once stored. It is delivered over a direct
   * link — now if the user is reachable, else as soon as they are (queued, in order, once).
   */
  async send(to: string, text: string, options: { ref?: string | undefined } = {}): Promise<{ id: string; status: 'queued' | 'sent' }> {
    this.#checkOpen();
    const recipient = checkedRecipient(to);
    // An online user is dialled first (one dial shared by concurrent sends, which keep their order),
    // so `sent` means on the wire; an unreachable one gets the message queued for later.
    if (this.#links.toUser(recipient) === undefined && this.#roster.isOnline(recipient)) await this.#linkTo(recipient);
    const result = await this.#chat.send(recipient, text, options);
    this.#roster.remember(recipient);
    this.#record('message.sent', `to=${recipient} id=${result.id} bytes=${Buffer.byteLength(text, 'utf8')}`);
    if (this.#links.toUser(recipient) === undefined) this.#redialer.poke(recipient);
    return result;
  }

  /**
   * Offers a file to `to` (hashed first; `file.offered`), sent when they accept, resumed by itself
   * after a lost link; the same file sent again to the same user resumes the unfinished transfer.
   */
  async sendFile(to: string, path: string, options: { name?: string | undefined; ref?: string | undefined } = {}): Promise<{ transferId: string }> {
    this.#checkOpen();
    const recipient = checkedRecipient(to);
    if (recipient === this.user) throw new SalaError('SALA_E_UNKNOWN_USER', 'You cannot send a file to yourself.');
    if (this.#links.toUser(recipient) === undefined && this.#roster.isOnline(recipient)) await this.#linkTo(recipient);
    this.#roster.remember(recipient);
    return this.#files.sendFile(recipient, path, options);
  }

  /** Accepts an offered file (the whole id, or an unambiguous start of it). */
  async acceptFile(transferId: string): Promise<void> {
    this.#checkOpen();
    return await this.#files.acceptFile(transferId);
  }

  async declineFile(transferId: string): Promise<void> {
    this.#checkOpen();
    return await this.#files.declineFile(transferId);
  }

  /** Ends a transfer on both sides (`file.failed` SALA_E_TRANSFER_CANCELLED) and removes the partial file. */
  async cancelFile(transferId: string): Promise<void> {
    this.#checkOpen();
    return await this.#files.cancelFile(transferId, this.user);
  }

  /** The groups this peer is in. */
  groups(): string[] {
    return this.#groups.groups;
  }

  /**
   * Joins a group (created by the server on first join): resolves once we hold its key and the
   * multicast self-test has run (`group.joined`); where multicast fails, the group goes over direct
   * links and a `warning` SALA_E_GROUP_MULTICAST_UNAVAILABLE says so.
   */
  async joinGroup(group: string): Promise<void> {
    this.#checkOpen();
    await this.#groups.join(group);
  }

  /** Leaves a group at once (`group.left`); the server rotates its key for those who stay. */
  leaveGroup(group: string): void {
    this.#checkOpen();
    this.#groups.leave(group);
  }

  /**
   * Sends a text (≤ 8 KiB of UTF-8) to a group we are in: `group.sent` with its id, then sealed and
   * signed datagrams to the group's multicast address (or over links). Not stored: group chat is
   * live, like a room; members who are away do not get it later.
   */
  groupSend(group: string, text: string, options: { ref?: string | undefined } = {}): { id: string } {
    this.#checkOpen();
    return this.#groups.send(group, text, options);
  }

  /** The conversation with `user`, oldest first, from this device's history. */
  async history(user: string): Promise<HistoryEntry[]> {
    this.#checkOpen();
    const records = await this.#chat.history(user);
    return records.map(({ id, from, to, text, at, status }) => ({ id, from, to, text, at, status }));
  }

  /** Logs out (the session slot is free at once), closes every link and stops. */
  quit(): Promise<void> {
    return this.#shutdown(true);
  }

  /** Stops without logging out: the server keeps the session for its grace period (a crash, for tests). */
  close(): Promise<void> {
    return this.#shutdown(false);
  }

  async #start(welcome: MessageOf<'welcome'>, options: PeerOptions): Promise<void> {
    const client = this.#client;
    this.#addRevocations(welcome.revoked);
    for (const user of await this.#history.peers()) this.#roster.remember(user);
    this.#roster.resetDirectory(welcome.directory);
    this.#roster.on('peer.online', (event) => this.emit('peer.online', event));
    this.#roster.on('peer.offline', (event) => this.emit('peer.offline', event));
    this.#roster.on('peer.sighted', ({ user }) => this.#onSighted(user));

    client.on('welcome', (again) => {
      this.#addRevocations(again.revoked);
      this.#roster.resetDirectory(again.directory);
    });
    client.on('directory', (change) => this.#roster.applyDirectory(change.online, change.offline));
    client.on('ticket', () => this.#links.pushTicket());
    client.on('revoked', (revocation) => this.#onRevocation(revocation, undefined));
    client.on('server.disconnected', () => {
      this.#roster.setDirectoryAuthoritative(false);
      this.emit('server.disconnected');
    });
    client.on('server.reconnected', () => {
      this.#roster.setDirectoryAuthoritative(true);
      this.emit('server.reconnected');
    });
    client.on('error', (error) => {
      this.emit('error', error);
      void this.close();
    });

    this.#links.on('link.up', (link) => this.#onLinkUp(link));
    this.#links.on('link.down', (link, error) => this.#onLinkDown(link, error));
    this.#links.on('revoked', (revocation, from) => this.#onRevocation(revocation, from));

    this.#chat.on('sent', (event) => this.emit('sent', event));
    this.#chat.on('delivered', (event) => this.emit('delivered', event));
    this.#chat.on('message', (event) => {
      this.#record('message.received', `from=${event.from} id=${event.id} bytes=${Buffer.byteLength(event.text, 'utf8')}`);
      this.emit('message', event);
    });

    this.#groups.on('group.joined', (event) => {
      this.#record('group.joined', `group=${event.group} multicast=${this.#groups.isMulticastWorking(event.group) === true ? 'yes' : 'no'}`);
      this.emit('group.joined', event);
    });
    this.#groups.on('group.left', (event) => {
      this.#record('group.left', `group=${event.group}`);
      this.emit('group.left', event);
    });
    this.#groups.on('group.sent', (event) => {
      this.#record('group.sent', `group=${event.group} id=${event.id}`);
      this.emit('group.sent', event);
    });
    this.#groups.on('group.message', (event) => {
      this.#record('group.received', `group=${event.group} from=${event.from} id=${event.id} bytes=${Buffer.byteLength(event.text, 'utf8')}`);
      this.emit('group.message', event);
    });
    this.#groups.on('warning', (error) => this.#warn(error.code, error.message));

    this.#discovery.on('peer.seen', (seen) => this.#roster.mdnsSeen(seen));
    this.#discovery.on('peer.gone', (gone) => this.#roster.mdnsGone(gone));
    this.#discovery.on('warning', ({ message }) => this.#warn('SALA_E_DISCOVERY_FAILED', message));

    client.announce(endpointsToAnnounce(this.listen.host, this.listen.port, { interfaceAddress: options.interfaceAddress }));
    this.#discovery.start();
    // What waited in the outbox from an earlier run goes to whoever is reachable.
    for (const user of await this.#history.pendingRecipients(this.user)) this.#redialer.poke(user);
    for (const user of this.#files.pendingUsers()) this.#redialer.poke(user);
  }

  #onSighted(user: string): void {
    if (this.#links.toUser(user) !== undefined) return;
    void this.#hasPending(user).then((isPending) => {
      if (isPending) this.#redialer.poke(user);
    });
  }

  /** One attempt to reach `user`: true when linked or when nothing waits for them any more. */
  async #reach(user: string): Promise<boolean> {
    if (this.#closing !== undefined) return true;
    if (this.#links.toUser(user) !== undefined) return true;
    if (!(await this.#hasPending(user))) return true;
    return this.#dial(user, REDIAL_TIMEOUT_MS);
  }

  #linkTo(user: string): Promise<void> {
    let linking = this.#linking.get(user);
    if (linking === undefined) {
      linking = this.#dial(user, FIRST_DIAL_TIMEOUT_MS).then(() => undefined).finally(() => this.#linking.delete(user));
      this.#linking.set(user, linking);
    }
    return linking;
  }

  /** Tries each known device of `user` once; true when a link is up. */
  async #dial(user: string, timeoutMs: number): Promise<boolean> {
    for (const target of this.#roster.targets(user)) {
      const error = await this.#connect(user, target, timeoutMs);
      if (error === undefined) return true;
      if (error.code === 'SALA_E_TICKET_INVALID') this.#warnOnce(`dial:${user}`, error.code, `${user}: ${error.message}`);
    }
    return false;
  }

  /** One dial of one device; resolves with why it failed (logged), or undefined when linked. */
  async #connect(user: string, target: DialTarget, timeoutMs: number): Promise<SalaError | undefined> {
    try {
      await this.#links.connect(user, target.sessionId, target.endpoints, { signal: AbortSignal.timeout(timeoutMs) });
      return undefined;
    } catch (err) {
      const error = toSalaError(err, 'SALA_E_CONNECTION_FAILED', `Could not reach ${user}.`);
      this.#log.info('peer.dial_failed', { user, code: error.code });
      return error;
    }
  }

  /** Dials one session of `user` (a group member the fallback must reach); true when linked. */
  async #dialSession(user: string, sessionId: string): Promise<boolean> {
    if (this.#closing !== undefined) return false;
    if (this.#links.get(sessionId) !== undefined) return true;
    const target = this.#roster.targets(user).find((t) => t.sessionId === sessionId);
    return target !== undefined && (await this.#connect(user, target, REDIAL_TIMEOUT_MS)) === undefined;
  }

  #openMulticastSocket(port: number): Promise<MulticastSocket> {
    const interfaceAddress = this.multicastInterface;
    if (interfaceAddress === undefined) {
      return Promise.reject(new SalaError('SALA_E_GROUP_MULTICAST_UNAVAILABLE', 'No IPv4 interface for multicast (use --interface).'));
    }
    return MulticastSocket.open({ port, interfaceAddress });
  }

  async #hasPending(user: string): Promise<boolean> {
    if (this.#files.hasPending(user)) return true;
    return (await this.#history.unacknowledged(user, this.user)).length > 0;
  }

  #onLinkUp(link: PeerLink): void {
    const { user, sid } = link.peer;
    this.#redialer.forget(user);
    this.#record('link.up', `peer=${user} session=${sid} dir=${link.isInitiator ? 'out' : 'in'}`);
    this.emit('link.up', { user, sessionId: sid });
    void this.#chat.attach(link);
    this.#files.attach(link);
    this.#groupRelay.attach(link);
  }

  #onLinkDown(link: PeerLink, error: SalaError | undefined): void {
    const { user, sid } = link.peer;
    this.#record('link.down', `peer=${user} session=${sid}${error === undefined ? '' : ` code=${error.code}`}`);
    this.emit('link.down', { user, sessionId: sid, code: error?.code });
    if (this.#closing !== undefined) return;
    // Another of the user's devices may still be linked; else keep trying while messages wait.
    if (this.#links.toUser(user) === undefined) this.#onSighted(user);
  }

  #addRevocations(revocations: readonly SignedRevocation[]): void {
    for (const revocation of revocations) this.#onRevocation(revocation, undefined);
  }

  /** A revocation from our server or passed on by a peer: checked, applied, and passed on once. */
  #onRevocation(revocation: SignedRevocation, from: PeerLink | undefined): void {
    const signingKey = this.#client.serverSigningKey;
    if (signingKey === undefined) return;
    let sessionId: string;
    try {
      sessionId = verifyRevocation(revocation, signingKey).sessionId;
    } catch {
      if (from !== undefined) this.#log.warn('peer.bad_revocation', { user: from.peer.user });
      return;
    }
    if (this.#revoked.has(sessionId)) return;
    if (this.#revoked.size >= 10_000) this.#revoked.clear(); // tickets expire within the hour anyway
    this.#revoked.add(sessionId);
    this.#links.drop(sessionId, new SalaError('SALA_E_TICKET_INVALID', 'That session was revoked by the server.'));
    this.#links.forwardRevocation(revocation, from);
  }

  /** #warn, at most once a minute per `key` (a redial loop must not repeat the same warning). */
  #warnOnce(key: string, code: string, message: string): void {
    const nowMs = Date.now();
    if (nowMs - (this.#warnedAt.get(key) ?? Number.NEGATIVE_INFINITY) < 60_000) return;
    if (this.#warnedAt.size >= 1_000) this.#warnedAt.clear();
    this.#warnedAt.set(key, nowMs);
    this.#warn(code, message);
  }

  /** A problem worth telling the user and the activity log about, that does not end this peer. */
  #warn(code: string, message: string): void {
    this.#record('peer.warning', `code=${code}`);
    this.emit('warning', { code, message });
  }

  #record(event: string, detail: string): void {
    this.#outbox.record(event, detail, this.#client.clock.now());
    this.#client.flushActivity();
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new SalaError('SALA_E_CHANNEL_CLOSED', 'This peer has quit.');
  }

  #shutdown(isLogout: boolean): Promise<void> {
    this.#closing ??= (async () => {
      this.#redialer.close();
      this.#files.close();
      this.#groupRelay.close();
      await this.#groups.close();
      await Promise.allSettled([this.#discovery.close(), this.#links.close()]);
      if (isLogout) await this.#client.logout();
      else this.#client.close();
      await this.#history.close();
      this.#outbox.flush();
      await Promise.all([this.#outbox.saved(), this.#files.flushed()]);
      this.#lock.release();
    })();
    return this.#closing;
  }
}
