import {
  decodeGroupBody,
  sealGroupDatagram,
  GROUP_DATAGRAM_TYPE,
  SalaError,
  type GroupDatagramType,
  type OpenedGroupDatagram,
} from '../../common/index.js';
import { GroupEpochs, type GroupState } from './group-epochs.js';
import { GroupReceiver } from './group-receiver.js';
import { GroupSender, requireSender } from './group-sender.js';
import { MulticastReachability } from './multicast-reachability.js';
import type { LinkTarget } from './group-service-options.js';
import { bytesEqual, hex, isDataLane, monotonicMs, type ChannelHost, type ChannelPort, type Lane } from './group-types.js';
import { TokenBucket } from './rate-limits.js';

export interface HeldDatagram {
  readonly bytes: Uint8Array;
  readonly isFromLink: boolean;
  readonly heldAtMs: number;
}

/** A key epoch this far ahead of ours is not a rotation we are about to hear of. */
const MAX_FUTURE_EPOCH_AHEAD = 64;

/**
 * One group this peer is in: its keys and members by epoch, our sender index, who is reachable
 * only over links, datagrams waiting for a newer epoch's state, and the two halves that do the
 * work — GroupSender (our messages, repairs, tail announcements) and GroupReceiver (the other
 * members' streams, NACKs, delivery).
 */
export class GroupChannel implements ChannelPort {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly host: ChannelHost;
  readonly controlBucket: TokenBucket;
  groupId: Uint8Array;
  groupIdHex: string;
  /** Whether our multicast works here (the join's self-test): false sends everything over links. */
  isMulticastWorking = false;
  /** True once join() resolved (group.joined emitted). */
  isJoined = false;
  #epochs: GroupEpochs;
  #senderIdx: number | undefined;
  readonly #sender: GroupSender;
  readonly #receiver: GroupReceiver;
  /** Session ids of members whose datagrams came over a link: we send to them over links too. */
  readonly #linkOnly = new Set<string>();
  readonly #reachability: MulticastReachability;
  /** When this channel was made (the join's group.state): members are checked for being heard since. */
  readonly #createdAtMs = monotonicMs();
  #future: HeldDatagram[] = [];
  #expiryTimer: NodeJS.Timeout | undefined;
  #isDestroyed = false;

  constructor(host: ChannelHost, state: GroupState, sessionId: string) {
    this.host = host;
    this.name = state.group;
    this.address = state.address;
    this.port = state.port;
    this.groupId = Uint8Array.from(state.groupId);
    this.groupIdHex = hex(this.groupId);
    this.#epochs = new GroupEpochs(state, host.tuning.overlapMs);
    this.#senderIdx = senderIdxIn(state, sessionId);
    this.controlBucket = new TokenBucket(host.tuning.nackBurst, host.tuning.nacksPerSecond);
    this.#sender = new GroupSender(this);
    this.#receiver = new GroupReceiver(this);
    this.#reachability = new MulticastReachability({
      probeDelayMs: host.tuning.reachabilityProbeDelayMs,
      checkDelayMs: host.tuning.reachabilityCheckMs,
      members: () => this.#otherMembers(),
      isLinkOnly: (sessionId) => this.#linkOnly.has(sessionId),
      multicastProbe: () => {
        if (!this.isMulticastWorking || !this.controlBucket.take(1, monotonicMs())) return;
        this.#trySend('group.probe_failed', () => this.transmit(this.makeProbe().datagram));
      },
      probeOverLinks: (members) => this.#trySend('group.probe_failed', () => this.host.transmitOverLinks(this, this.makeProbe().datagram, members)),
      log: (unheard) => host.log.info('group.multicast_unheard', { group: this.name, members: unheard.join(',') }),
    });
  }

  /**
   * The group's membership changed (or we just joined, `isJoining`): with multicast working, find
   * out whose multicast does not reach us and have them send to us over links (MulticastReachability).
   */
  checkReachability(isJoining: boolean): void {
    if (!this.isJoined && !isJoining) return;
    if (!this.isMulticastWorking || this.#isDestroyed) return;
    this.#reachability.changed(isJoining ? this.#createdAtMs : monotonicMs(), !isJoining);
  }

  get epochs(): GroupEpochs {
    return this.#epochs;
  }

  get epoch(): number {
    return this.#epochs.epoch;
  }

  get senderIdx(): number | undefined {
    return this.#senderIdx;
  }

  // ── for openGroupDatagram ──

  key(epoch: number): Uint8Array | undefined {
    return this.#epochs.key(epoch, monotonicMs());
  }

  memberSigningKey(epoch: number, senderIdx: number): Uint8Array | undefined {
    return this.#epochs.member(epoch, senderIdx, monotonicMs())?.sigPk;
  }

  // ── membership ──

  /** A group.state of this incarnation; returns the datagrams held for its epoch when it rotated. */
  applyState(state: GroupState, sessionId: string): HeldDatagram[] {
    const nowMs = monotonicMs();
    const result = this.#epochs.apply(state, nowMs);
    if (result === 'stale') return [];
    this.#senderIdx = senderIdxIn(state, sessionId);
    const present = new Set(state.members.map((m) => m.sessionId));
    for (const linked of this.#linkOnly) if (!present.has(linked)) this.#linkOnly.delete(linked);
    if (result !== 'rotated') return [];
    this.#scheduleExpiry();
    const due = this.#future.filter((held) => nowMs - held.heldAtMs < this.host.tuning.futureDatagramTtlMs);
    this.#future = [];
    return due;
  }

  /** The server restarted (a new groupId): nothing of the old incarnation is valid any more. */
  resetIncarnation(state: GroupState, sessionId: string): void {
    this.#receiver.clear();
    this.#sender.clear();
    this.#future = [];
    this.#linkOnly.clear();
    this.#epochs.destroy();
    this.#epochs = new GroupEpochs(state, this.host.tuning.overlapMs);
    this.groupId = Uint8Array.from(state.groupId);
    this.groupIdHex = hex(this.groupId);
    this.#senderIdx = senderIdxIn(state, sessionId);
  }

  /** Keeps a datagram sealed in an epoch newer than ours until its group.state arrives (bounded; not yet authenticated). */
  holdFuture(bytes: Uint8Array, epoch: number, isFromLink: boolean): void {
    if (epoch - this.#epochs.epoch > MAX_FUTURE_EPOCH_AHEAD) return;
    const nowMs = monotonicMs();
    this.#future = this.#future.filter((held) => nowMs - held.heldAtMs < this.host.tuning.futureDatagramTtlMs);
    if (this.#future.length >= this.host.tuning.futureDatagramsPerGroup) this.#future.shift();
    this.#future.push({ bytes: Uint8Array.from(bytes), isFromLink, heldAtMs: nowMs });
  }

  /** Members to send a datagram to over links: all of them when our multicast fails, else those only reachable so. */
  linkTargets(): LinkTarget[] {
    return this.#otherMembers().filter((m) => !this.isMulticastWorking || this.#linkOnly.has(m.sessionId));
  }

  #otherMembers(): LinkTarget[] {
    return this.#epochs.members.filter((m) => m.senderIdx !== this.#senderIdx).map(({ user, sessionId, senderIdx }) => ({ user, sessionId, senderIdx }));
  }

  #trySend(event: string, send: () => void): void {
    try {
      send();
    } catch (err) {
      this.host.log.warn(event, { group: this.name, message: String(err) });
    }
  }

  // ── sending ──

  sendText(text: string): string {
    return this.#sender.sendText(text);
  }

  makeProbe(): { datagram: Uint8Array; seq: number } {
    return this.#sender.makeProbe();
  }

  seal(type: GroupDatagramType, body: Uint8Array, epoch: number, lane: Lane): { datagram: Uint8Array; seq: number } {
    const senderIdx = requireSender(this);
    const groupKey = this.#epochs.key(epoch, monotonicMs());
    if (groupKey === undefined) throw new SalaError('SALA_E_GROUP_KEY_UNKNOWN', `The key of ${this.name} epoch ${epoch} is no longer held.`);
    const seq = this.host.nextSeq(this.groupIdHex, lane);
    const datagram = sealGroupDatagram({
      groupKey,
      groupId: this.groupId,
      epoch,
      senderIdx,
      instance: lane === 'data' ? this.host.dataInstance : this.host.controlInstance,
      seq,
      timeMs: this.host.serverNow(),
      type,
      body,
      signingKey: this.host.signingKey,
    });
    this.host.counters.datagramsSent += 1;
    return { datagram, seq };
  }

  transmit(datagram: Uint8Array): void {
    if (!this.#isDestroyed) this.host.transmit(this, datagram);
  }

  // ── receiving ──

  /** Takes one authenticated datagram of this group; throws SALA_E_GROUP_DATAGRAM_INVALID for a bad body. */
  handle(opened: OpenedGroupDatagram, isFromLink: boolean): void {
    const { header } = opened;
    const nowMs = monotonicMs();
    const member = this.#epochs.member(header.epoch, header.senderIdx, nowMs);
    if (member === undefined) return; // the opener checked it; the epoch cannot have ended since
    if (isFromLink) this.#linkOnly.add(member.sessionId);
    else this.#reachability.heard(member.sessionId, nowMs);
    const body = decodeGroupBody(header.type, opened.body);
    const isData = isDataLane(header.instance);
    if (isData !== (body.type === GROUP_DATAGRAM_TYPE.DATA)) {
      throw new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', 'A group datagram was dropped: its type does not belong on its instance\'s lane.');
    }
    switch (body.type) {
      case GROUP_DATAGRAM_TYPE.DATA:
        this.#receiver.onData(header, member, body.fragment, nowMs);
        return;
      case GROUP_DATAGRAM_TYPE.REPAIR:
        this.host.counters.repairsReceived += 1;
        this.#receiver.onRepair(header, body.repairedSeq, body.fragment, nowMs);
        return;
      case GROUP_DATAGRAM_TYPE.NACK:
        if (body.targetSenderIdx === this.#senderIdx && bytesEqual(body.targetInstance, this.host.dataInstance)) {
          this.#sender.repair(header, body, nowMs);
        } else {
          this.#receiver.onNack(header, member, body, nowMs);
        }
        return;
      default:
        assertNever(body);
    }
  }

  destroy(): void {
    if (this.#isDestroyed) return;
    this.#isDestroyed = true;
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#receiver.close();
    this.#sender.close();
    this.#reachability.close();
    this.#future = [];
    this.#epochs.destroy();
  }

  /** Zeroes superseded keys when their overlap ends, and forgets streams of members no longer in any held epoch. */
  #scheduleExpiry(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#isDestroyed) return;
    const nowMs = monotonicMs();
    const next = this.#epochs.expire(nowMs);
    this.#receiver.keepOnly(this.#epochs.heldSenderIndexes(nowMs));
    if (next === undefined) return;
    this.#expiryTimer = setTimeout(() => this.#scheduleExpiry(), Math.max(0, Math.ceil(next - nowMs)) + 1);
    this.#expiryTimer.unref();
  }
}

function senderIdxIn(state: GroupState, sessionId: string): number | undefined {
  return state.members.find((m) => m.sessionId === sessionId)?.senderIdx;
}

function assertNever(value: never): never {
  throw new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', `A group datagram was dropped: its type ${String(value)} is unknown.`);
}
