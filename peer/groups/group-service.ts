import { EventEmitter } from 'node:events';
import {
  generateGroupInstance,
  normalizeUserName,
  silentLogger,
  Reassembler,
  SalaError,
  type GroupReceiveStats,
  type Logger,
  type MessageOf,
} from '../../common/index.js';
import { DatagramInbox } from './datagram-inbox.js';
import { GroupChannel } from './group-channel.js';
import { validateGroupServiceOptions, type GroupServiceOptions, type GroupTuning, type LinkTarget } from './group-service-options.js';
import { bytesEqual, laneInstances, type ChannelHost, type GroupCounters, type GroupMessageEvent, type Lane } from './group-types.js';
import { WarningLimiter } from './rate-limits.js';
import { SharedSocket } from './shared-socket.js';

export interface GroupServiceEvents {
  /** join() completed: we are a member and can send. */
  'group.joined': [{ group: string }];
  /** Out of the group: leave() was called, or the server took us out (with a `warning` if it said why). */
  'group.left': [{ group: string }];
  /** One of our messages went out; `ref` is the caller's tag from send(). */
  'group.sent': [{ id: string; group: string; ref?: string }];
  /** Another member's message, once, in that member's order. */
  'group.message': [GroupMessageEvent];
  /** Something recoverable: bad or lost datagrams, multicast not working. Bounded (maxWarnings per window). */
  warning: [SalaError];
}

export interface GroupServiceStats extends GroupCounters {
  /** Warnings held back by the limiter. */
  warningsSuppressed: number;
  /** The datagram opener's counters (accepted, rejected by code, AEAD opens, signature verifies). */
  receive: GroupReceiveStats;
}

interface PendingJoin {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: SalaError) => void;
}

function groupName(input: string): string {
  try {
    return normalizeUserName(input);
  } catch {
    throw new SalaError('SALA_E_INVALID_NAME', `"${String(input).slice(0, 40)}" is not a valid group name: use 2 to 32 letters a–z, digits, "_" or "-".`);
  }
}

/**
 * Group chat over UDP multicast (issue 7). The rendezvous server decides membership and hands out
 * each group's key, epoch and member list (group.state); this service turns texts into sealed,
 * signed datagrams (common/crypto/group-datagram.ts) and back:
 *
 * - one multicast socket for all groups, opened at the first join and closed after the last leave;
 *   datagrams of groups we are not in are dropped before any crypto (Linux delivers them to us too);
 * - a message is split into DATA fragments at consecutive seqs of our DATA instance; receivers
 *   deliver each sender's messages once and in its order (SenderStream), ask for gaps with a NACK
 *   (after nackDelayMs, coalesced, rate-limited, suppressed when another member already asked),
 *   and give up after repairTimeoutMs with a `warning`; senders answer from a bounded history with
 *   REPAIR datagrams, each seq at most once per repairIntervalMs and within a repair budget;
 * - everything but DATA (NACK, REPAIR, tail announcements, probes) travels on a second lane (our
 *   instance with the top bit set), so the DATA stream has no seq that cannot be repaired; seq
 *   counters are per group and lane and only go up for the life of the service;
 * - a sender announces its last DATA seq shortly after it stops sending, so a lost last datagram
 *   is noticed and repaired too;
 * - a late joiner starts each sender's stream at the first seq it sees and asks for nothing older;
 * - after a rotation the superseded keys stay valid for overlapMs; datagrams of an epoch we have not
 *   heard of yet are held briefly until its group.state arrives;
 * - at join we multicast a probe and expect our own copy back within selfTestTimeoutMs; if it does
 *   not come, the group's datagrams go to every member over direct links (sendOverLinks), and
 *   members who receive a datagram over a link send to its sender over links from then on.
 */
export class GroupService extends EventEmitter<GroupServiceEvents> {
  readonly #options: GroupServiceOptions;
  readonly #tuning: GroupTuning;
  readonly #log: Logger;
  readonly #dataInstance: Uint8Array;
  readonly #controlInstance: Uint8Array;
  readonly #reassembler = new Reassembler();
  readonly #warnings: WarningLimiter;
  readonly #counters: GroupCounters = { datagramsReceived: 0, datagramsForeign: 0, datagramsSent: 0, nacksSent: 0, tailAnnouncementsSent: 0, repairsSent: 0, repairsReceived: 0, messagesDelivered: 0, seqsLost: 0 };
  readonly #host: ChannelHost;
  readonly #inbox: DatagramInbox;
  /** By group name, and by group id (hex) for incoming datagrams. */
  readonly #channels = new Map<string, GroupChannel>();
  readonly #byGroupId = new Map<string, GroupChannel>();
  readonly #pendingJoins = new Map<string, PendingJoin>();
  /** group.left answers the server still owes us for our leaves; states before them are stale. */
  readonly #leftAcksOwed = new Map<string, number>();
  readonly #seqs = new Map<string, number>();
  readonly #socket: SharedSocket;
  #closing: Promise<void> | undefined;
  readonly #onState = (state: MessageOf<'group.state'>): void => this.#handleState(state);
  readonly #onLeft = (group: string, error: SalaError | undefined): void => this.#handleLeft(group, error);

  constructor(options: GroupServiceOptions) {
    super();
    this.#tuning = validateGroupServiceOptions(options);
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.#warnings = new WarningLimiter(this.#tuning.maxWarnings, this.#tuning.warningWindowMs);
    // One random instance per service (one service per peer process), split into its two lanes.
    const lanes = laneInstances(generateGroupInstance());
    this.#dataInstance = lanes.data;
    this.#controlInstance = lanes.control;
    this.#host = {
      tuning: this.#tuning,
      reassembler: this.#reassembler,
      signingKey: options.me.signingKey,
      dataInstance: this.#dataInstance,
      controlInstance: this.#controlInstance,
      counters: this.#counters,
      log: this.#log,
      nextSeq: (groupIdHex, lane) => this.#nextSeq(groupIdHex, lane),
      serverNow: () => this.#options.serverNow(),
      transmit: (channel, datagram) => this.#transmit(channel, datagram),
      transmitOverLinks: (channel, datagram, members) => void this.#sendOverLinks(channel, datagram, members),
      deliver: (message) => this.emit('group.message', message),
      warn: (error) => this.#warn(error),
    };
    this.#socket = new SharedSocket({
      openSocket: options.openSocket,
      onDatagram: (bytes) => this.#receive(bytes, false),
      onWarning: (error) => this.#warn(error),
      selfTestTimeoutMs: this.#tuning.selfTestTimeoutMs,
      log: this.#log,
    });
    this.#inbox = new DatagramInbox({
      channelOf: (groupIdHex) => this.#byGroupId.get(groupIdHex),
      dataInstance: this.#dataInstance,
      controlInstance: this.#controlInstance,
      receiveRate: { perSecond: this.#tuning.receivePerSecond, burst: this.#tuning.receiveBurst },
      counters: this.#counters,
      serverNow: () => this.#options.serverNow(),
      ownControlBack: (groupIdHex, seq) => this.#socket.probeBack(groupIdHex, seq),
      warn: (error) => this.#warn(error),
      log: this.#log,
    });
    options.rendezvous.on('group.state', this.#onState);
    options.rendezvous.on('group.left', this.#onLeft);
  }

  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  /** Groups joined (join() resolved and not left since). */
  get groups(): string[] {
    return [...this.#channels.values()].filter((c) => c.isJoined).map((c) => c.name);
  }

  get stats(): GroupServiceStats {
    return { ...this.#counters, warningsSuppressed: this.#warnings.suppressedTotal, receive: this.#inbox.stats };
  }

  /** Whether the join's self-test saw our own multicast come back; undefined for a group we are not in. */
  isMulticastWorking(group: string): boolean | undefined {
    const channel = this.#channels.get(groupName(group));
    return channel?.isJoined === true ? channel.isMulticastWorking : undefined;
  }

  /**
   * Joins a group: resolves once the server's group.state lists us and the multicast self-test has
   * run; rejects with the server's refusal (SALA_E_INVALID_NAME, SALA_E_RATE_LIMIT, SALA_E_BUSY), or
   * SALA_E_ABORTED when leave(), close() or `signal` ends it first. Joining a joined group resolves.
   */
  join(group: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.isClosed) return Promise.reject(closedError());
    let name: string;
    try {
      name = groupName(group);
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(abortedError(name));
    if (this.#channels.get(name)?.isJoined === true) return Promise.resolve();
    let pending = this.#pendingJoins.get(name);
    if (pending === undefined) {
      let resolve!: () => void;
      let reject!: (error: SalaError) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      pending = { promise, resolve, reject };
      this.#pendingJoins.set(name, pending);
      this.#options.rendezvous.joinGroup(name);
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (this.#pendingJoins.get(name) === pending) this.#leaveNow(name, abortedError(name));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.promise.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
    return pending.promise;
  }

  /**
   * Leaves a group (or cancels its join) at once: keys are dropped, nothing more is sent or
   * delivered, `group.left` is emitted, and the server is told. SALA_E_GROUP_NOT_MEMBER if we are in
   * no such group.
   */
  leave(group: string): void {
    if (this.isClosed) throw closedError();
    const name = groupName(group);
    if (!this.#channels.has(name) && !this.#pendingJoins.has(name)) {
      throw new SalaError('SALA_E_GROUP_NOT_MEMBER', `You are not in the group ${name}.`);
    }
    this.#leaveNow(name, abortedError(name));
  }

  /**
   * Sends a text to a group we are in; returns its id (emitting `group.sent` first). Throws
   * SALA_E_MESSAGE_TOO_LARGE over 8 KiB of UTF-8, SALA_E_GROUP_NOT_MEMBER for a group we are not
   * in, SALA_E_RATE_LIMIT (with retryAfterMs) when sending faster than receivers accept.
   */
  send(group: string, text: string, options: { ref?: string | undefined } = {}): { id: string } {
    if (this.isClosed) throw closedError();
    const name = groupName(group);
    const channel = this.#channels.get(name);
    if (channel?.isJoined !== true) throw new SalaError('SALA_E_GROUP_NOT_MEMBER', `You are not in the group ${name}; join it first.`);
    const id = channel.sendText(text);
    this.emit('group.sent', { id, group: name, ...(options.ref === undefined ? {} : { ref: options.ref }) });
    return { id };
  }

  /** A group datagram that arrived over a direct link (the fallback); checked exactly like multicast ones. */
  receiveFromLink(datagram: Uint8Array): void {
    this.#receive(datagram, true);
  }

  /**
   * Stops everything locally: pending joins fail with SALA_E_CHANNEL_CLOSED, keys are zeroed, timers
   * cleared, the socket closed. The server is not told (logging out takes the session out of its
   * groups). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = this.#shutDown(closedError());
    return this.#closing;
  }

  /** close(), failing pending joins with `error`. */
  destroy(error?: SalaError): void {
    if (this.#closing !== undefined) return;
    this.#closing = this.#shutDown(error ?? closedError());
    this.#closing.catch(() => undefined);
  }

  async #shutDown(error: SalaError): Promise<void> {
    this.#options.rendezvous.off('group.state', this.#onState);
    this.#options.rendezvous.off('group.left', this.#onLeft);
    for (const pending of this.#pendingJoins.values()) pending.reject(error);
    this.#pendingJoins.clear();
    for (const channel of this.#channels.values()) channel.destroy();
    this.#channels.clear();
    this.#byGroupId.clear();
    await this.#socket.close();
  }

  // ── the server's side ──

  #handleState(state: MessageOf<'group.state'>): void {
    if (this.isClosed) return;
    const name = state.group;
    if ((this.#leftAcksOwed.get(name) ?? 0) > 0) return; // sent before the server saw our leave
    const sessionId = this.#options.me.sessionId;
    const channel = this.#channels.get(name);
    if (channel !== undefined) {
      const known = new Set(channel.linkTargets().map((m) => m.sessionId));
      if (!bytesEqual(channel.groupId, state.groupId)) {
        // The server restarted and the group was made anew (we joined again when we resumed).
        this.#byGroupId.delete(channel.groupIdHex);
        channel.resetIncarnation(state, sessionId);
        this.#byGroupId.set(channel.groupIdHex, channel);
        known.clear();
      } else {
        for (const held of channel.applyState(state, sessionId)) this.#inbox.dispatch(held.bytes, held.isFromLink);
      }
      channel.checkReachability(false);
      // Without multicast we must tell each newcomer to reach us over links, before they send.
      if (channel.isJoined && !channel.isMulticastWorking) {
        const newcomers = channel.linkTargets().filter((m) => !known.has(m.sessionId));
        if (newcomers.length > 0) void this.#probeOverLinks(channel, newcomers);
      }
      return;
    }
    const pending = this.#pendingJoins.get(name);
    if (pending === undefined || !state.members.some((m) => m.sessionId === sessionId)) return;
    const joined = new GroupChannel(this.#host, state, sessionId);
    this.#channels.set(name, joined);
    this.#byGroupId.set(joined.groupIdHex, joined);
    this.#attach(joined, pending).catch((err: unknown) => {
      this.#log.warn('group.attach_failed', { group: name, message: String(err) });
    });
  }

  #handleLeft(group: string, error: SalaError | undefined): void {
    if (this.isClosed) return;
    if (error !== undefined) {
      // A refused join: ours, or the client's own rejoin after a reconnection.
      this.#leftAcksOwed.delete(group);
      const pending = this.#pendingJoins.get(group);
      if (pending !== undefined) {
        this.#pendingJoins.delete(group);
        this.#dropChannel(group);
        pending.reject(error);
        return;
      }
      if (this.#channels.has(group)) {
        this.#dropChannel(group);
        this.#warn(error);
        this.emit('group.left', { group });
      }
      return;
    }
    const owed = this.#leftAcksOwed.get(group) ?? 0;
    if (owed > 0) {
      if (owed === 1) this.#leftAcksOwed.delete(group);
      else this.#leftAcksOwed.set(group, owed - 1);
      return;
    }
    if (this.#channels.get(group)?.isJoined === true) {
      this.#dropChannel(group);
      this.emit('group.left', { group });
    }
  }

  #leaveNow(name: string, error: SalaError): void {
    const pending = this.#pendingJoins.get(name);
    this.#pendingJoins.delete(name);
    const hadChannel = this.#dropChannel(name);
    this.#leftAcksOwed.set(name, (this.#leftAcksOwed.get(name) ?? 0) + 1);
    this.#options.rendezvous.leaveGroup(name);
    pending?.reject(error);
    if (hadChannel || pending !== undefined) this.emit('group.left', { group: name });
  }

  /** Forgets a group locally: keys, streams, timers, its multicast membership. */
  #dropChannel(name: string): boolean {
    const channel = this.#channels.get(name);
    if (channel === undefined) return false;
    this.#channels.delete(name);
    this.#byGroupId.delete(channel.groupIdHex);
    channel.destroy();
    const isAddressShared = [...this.#channels.values()].some((c) => c.address === channel.address);
    if (!isAddressShared) this.#socket.current?.leave(channel.address);
    this.#closeSocketIfIdle();
    return true;
  }

  // ── joining: socket and self-test ──

  async #attach(channel: GroupChannel, pending: PendingJoin): Promise<void> {
    const socket = await this.#socket.acquire(channel.port);
    if (this.#channels.get(channel.name) !== channel) {
      this.#closeSocketIfIdle();
      return;
    }
    let isWorking = false;
    if (socket !== undefined) {
      try {
        socket.join(channel.address);
        // Multicast until the self-test says otherwise (NACKs may go out while it runs).
        channel.isMulticastWorking = true;
        isWorking = await this.#socket.selfTest(socket, channel.address, channel.groupIdHex, channel.makeProbe());
      } catch (err) {
        this.#log.warn('group.multicast_join_failed', { group: channel.name, message: String(err) });
      }
    }
    if (this.#channels.get(channel.name) !== channel || this.#pendingJoins.get(channel.name) !== pending) return;
    channel.isMulticastWorking = isWorking;
    if (!isWorking) {
      const instead =
        this.#options.sendOverLinks === undefined
          ? 'and this program cannot send group messages over direct links, so the group will stay silent'
          : 'its messages go over direct links to each member instead';
      this.#warn(new SalaError('SALA_E_GROUP_MULTICAST_UNAVAILABLE', `Multicast does not work for the group ${channel.name} on this network; ${instead}.`));
      // A probe over links tells the members that we are only reachable that way; joined means
      // they know it (or could not be reached in time), so what they send next reaches us.
      await this.#probeOverLinks(channel, channel.linkTargets());
    }
    if (isWorking) channel.checkReachability(true);
    channel.isJoined = true;
    this.#pendingJoins.delete(channel.name);
    pending.resolve();
    this.emit('group.joined', { group: channel.name });
  }

  /** Sends a probe to `members` over links, waiting (at most linkProbeTimeoutMs) until it is on its way. */
  async #probeOverLinks(channel: GroupChannel, members: readonly LinkTarget[]): Promise<void> {
    if (members.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const sent = this.#sendOverLinks(channel, channel.makeProbe().datagram, members);
      await Promise.race([sent, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#tuning.linkProbeTimeoutMs)))]);
    } catch (err) {
      this.#log.warn('group.probe_failed', { group: channel.name, message: String(err) });
    } finally {
      clearTimeout(timer);
    }
  }

  /** sendOverLinks, never throwing: settles when the datagram is on its way (or could not be). */
  async #sendOverLinks(channel: GroupChannel, datagram: Uint8Array, members: readonly LinkTarget[]): Promise<void> {
    const sendOverLinks = this.#options.sendOverLinks;
    if (sendOverLinks === undefined || members.length === 0) return;
    try {
      await sendOverLinks(channel.name, datagram, members);
    } catch (err) {
      this.#log.warn('group.link_send_failed', { group: channel.name, message: String(err) });
    }
  }

  #closeSocketIfIdle(): void {
    if (this.#channels.size === 0 && this.#pendingJoins.size === 0 && !this.isClosed) this.#socket.release();
  }

  // ── datagrams ──

  #nextSeq(groupIdHex: string, lane: Lane): number {
    const key = `${lane}:${groupIdHex}`;
    const seq = this.#seqs.get(key) ?? 0;
    this.#seqs.set(key, seq + 1);
    return seq;
  }

  #transmit(channel: GroupChannel, datagram: Uint8Array): void {
    if (channel.isMulticastWorking) this.#socket.current?.send(datagram, channel.address);
    // Runs synchronously up to the send, so datagrams leave in order; never rejects.
    void this.#sendOverLinks(channel, datagram, channel.linkTargets());
  }

  #receive(bytes: Uint8Array, isFromLink: boolean): void {
    if (!this.isClosed) this.#inbox.receive(bytes, isFromLink);
  }

  #warn(error: SalaError): void {
    if (this.isClosed) return;
    const admitted = this.#warnings.admit(performance.now());
    if (admitted === undefined) return;
    const shown =
      admitted.suppressedBefore === 0
        ? error
        : new SalaError(error.code, `${error.message} (${admitted.suppressedBefore} similar group warnings were not shown.)`, { cause: error });
    this.#log.warn('group.warning', { code: error.code, suppressed: admitted.suppressedBefore });
    this.emit('warning', shown);
  }
}

function closedError(): SalaError {
  return new SalaError('SALA_E_CHANNEL_CLOSED', 'Group chat is closed.');
}

function abortedError(group: string): SalaError {
  return new SalaError('SALA_E_ABORTED', `Joining the group ${group} was cancelled.`);
}
