import {
  decodeGroupHeader,
  openGroupDatagram,
  GroupRateBuckets,
  GroupReceiveState,
  GROUP_DATAGRAM_VERSION,
  GROUP_HEADER_BYTES,
  GROUP_ID_BYTES,
  SalaError,
  type GroupHeader,
  type GroupOpenContext,
  type GroupReceiveStats,
  type Logger,
} from '../../common/index.js';
import type { GroupChannel } from './group-channel.js';
import { bytesEqual, hex, type GroupCounters } from './group-types.js';

export interface DatagramInboxOptions {
  /** The channel of a group id (hex), if we are in that group. */
  channelOf: (groupIdHex: string) => GroupChannel | undefined;
  dataInstance: Uint8Array;
  controlInstance: Uint8Array;
  /** Datagrams accepted per member before the signature check (GroupTuning.receivePerSecond, receiveBurst). */
  receiveRate: { perSecond: number; burst: number };
  counters: GroupCounters;
  serverNow: () => number;
  /** One of our own control-lane datagrams came back (a self-test probe, maybe). */
  ownControlBack: (groupIdHex: string, seq: number) => void;
  warn: (error: SalaError) => void;
  log: Logger;
}

/**
 * Where every datagram arrives, from the socket or a link: cheap checks first (another group's?
 * ours, back through loopback? an epoch we have not heard of yet?), then openGroupDatagram (H3's
 * order: header, rate, window, time, AEAD, Ed25519), then the group's channel.
 */
export class DatagramInbox {
  readonly #options: DatagramInboxOptions;
  readonly #receiveState: GroupReceiveState;
  readonly #openContext: GroupOpenContext;

  constructor(options: DatagramInboxOptions) {
    this.#options = options;
    this.#receiveState = new GroupReceiveState({ rateLimiter: new GroupRateBuckets(options.receiveRate) });
    this.#openContext = {
      isKnownGroup: (groupId) => options.channelOf(hex(groupId)) !== undefined,
      groupKey: (groupId, epoch) => options.channelOf(hex(groupId))?.key(epoch),
      memberSigningKey: (epoch, senderIdx, groupId) => options.channelOf(hex(groupId))?.memberSigningKey(epoch, senderIdx),
      nowMs: () => options.serverNow(),
      state: this.#receiveState,
    };
  }

  get stats(): GroupReceiveStats {
    const { stats } = this.#receiveState;
    return { ...stats, rejected: { ...stats.rejected } };
  }

  receive(bytes: Uint8Array, isFromLink: boolean): void {
    this.#options.counters.datagramsReceived += 1;
    this.dispatch(bytes, isFromLink);
  }

  /** receive() without counting it again (a held datagram whose epoch has arrived). */
  dispatch(bytes: Uint8Array, isFromLink: boolean): void {
    const { channelOf, counters } = this.#options;
    // Another group's datagram (Linux hands us every group's traffic on the port): not ours to judge.
    if (bytes.length >= 2 + GROUP_ID_BYTES && bytes[0] === GROUP_DATAGRAM_VERSION && channelOf(hex(bytes.subarray(2, 2 + GROUP_ID_BYTES))) === undefined) {
      counters.datagramsForeign += 1;
      return;
    }
    let header: GroupHeader;
    try {
      if (bytes.length < GROUP_HEADER_BYTES || bytes[0] !== GROUP_DATAGRAM_VERSION) {
        throw new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', 'A datagram on the group port was dropped: it is not a Sala group datagram.');
      }
      header = decodeGroupHeader(bytes);
    } catch (err) {
      this.#options.warn(err as SalaError);
      return;
    }
    const channel = channelOf(hex(header.groupId));
    if (channel === undefined) return;
    const { dataInstance, controlInstance } = this.#options;
    // Ours, back through multicast loopback (or someone replaying ours): only a self-test wants it.
    if (header.senderIdx === channel.senderIdx || bytesEqual(header.instance, dataInstance) || bytesEqual(header.instance, controlInstance)) {
      if (bytesEqual(header.instance, controlInstance)) this.#options.ownControlBack(channel.groupIdHex, header.seq);
      return;
    }
    if (header.epoch > channel.epoch) {
      channel.holdFuture(bytes, header.epoch, isFromLink);
      return;
    }
    try {
      channel.handle(openGroupDatagram(bytes, this.#openContext), isFromLink);
    } catch (err) {
      if (!(err instanceof SalaError)) throw err;
      // Duplicates are normal (a datagram may come both by multicast and over a link), replays are
      // harmless once dropped, and datagrams of an epoch whose overlap ended (or ended before we
      // joined) come with every rotation: none is worth a warning.
      if (err.code === 'SALA_E_GROUP_REPLAY' || err.code === 'SALA_E_GROUP_KEY_UNKNOWN') {
        this.#options.log.debug('group.datagram_dropped', { group: channel.name, code: err.code });
        return;
      }
      this.#options.warn(err);
    }
  }
}
