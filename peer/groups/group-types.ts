import type { GroupDatagramType, Logger, Reassembler, SalaError } from '../../common/index.js';
import type { GroupChannel } from './group-channel.js';
import type { GroupEpochs } from './group-epochs.js';
import type { GroupTuning, LinkTarget } from './group-service-options.js';
import type { TokenBucket } from './rate-limits.js';

/** The shapes the group files share, and the few helpers they all use. */

export interface GroupMessageEvent {
  id: string;
  group: string;
  from: string;
  text: string;
  /** Server time (ms) the sender sent it at: the signed header time of its first fragment. */
  at: number;
}

export interface GroupCounters {
  /** Datagrams that reached the service (multicast and links), before any check. */
  datagramsReceived: number;
  /** Of those, datagrams of groups we are not in (dropped unread: Linux delivers every group's). */
  datagramsForeign: number;
  datagramsSent: number;
  nacksSent: number;
  /** Tail announcements: NACK-shaped datagrams naming our own last DATA seq (see GroupSender). */
  tailAnnouncementsSent: number;
  repairsSent: number;
  repairsReceived: number;
  messagesDelivered: number;
  /** Seqs of other members given up on after the repair timeout (or beyond maxGapSeqs). */
  seqsLost: number;
}

/** What a channel needs from the service that owns the socket, the identity and the counters. */
export interface ChannelHost {
  readonly tuning: GroupTuning;
  readonly reassembler: Reassembler;
  readonly signingKey: Uint8Array;
  /** Our data-lane instance: the DATA stream receivers order and repair. */
  readonly dataInstance: Uint8Array;
  /** Our control-lane instance: NACKs, REPAIRs, tail announcements, probes. */
  readonly controlInstance: Uint8Array;
  readonly counters: GroupCounters;
  readonly log: Logger;
  nextSeq(groupIdHex: string, lane: Lane): number;
  serverNow(): number;
  transmit(channel: GroupChannel, datagram: Uint8Array): void;
  /** Sends a datagram to these members over direct links only (a reachability probe). */
  transmitOverLinks(channel: GroupChannel, datagram: Uint8Array, members: readonly LinkTarget[]): void;
  deliver(message: GroupMessageEvent): void;
  warn(error: SalaError): void;
}

/** What a channel's sender and receiver halves need from their channel. */
export interface ChannelPort {
  readonly name: string;
  readonly groupIdHex: string;
  readonly host: ChannelHost;
  readonly epochs: GroupEpochs;
  readonly senderIdx: number | undefined;
  /** NACKs and tail announcements of this group, together. */
  readonly controlBucket: TokenBucket;
  seal(type: GroupDatagramType, body: Uint8Array, epoch: number, lane: Lane): { datagram: Uint8Array; seq: number };
  transmit(datagram: Uint8Array): void;
}

/**
 * A sender has two lanes, two instances that differ only in the top bit: DATA goes on the data lane
 * (top bit 0) and forms the stream receivers order and repair; NACKs, REPAIRs, tail announcements
 * and self-test probes go on the control lane (top bit 1). So every seq of the data lane carries a
 * fragment that can be repaired, and a REPAIR names its stream (its own instance, top bit cleared).
 */
export type Lane = 'data' | 'control';

export function laneInstances(random: Uint8Array): { data: Uint8Array; control: Uint8Array } {
  const data = Uint8Array.from(random);
  const control = Uint8Array.from(random);
  data[0] = (data[0] ?? 0) & 0x7f;
  control[0] = (control[0] ?? 0) | 0x80;
  return { data, control };
}

export function isDataLane(instance: Uint8Array): boolean {
  return ((instance[0] ?? 0) & 0x80) === 0;
}

export function dataLaneOf(instance: Uint8Array): Uint8Array {
  return laneInstances(instance).data;
}

/** One sender's DATA stream in one group incarnation. */
export function streamKey(groupIdHex: string, senderIdx: number, dataInstance: Uint8Array): string {
  return `${groupIdHex}:${senderIdx}:${hex(dataInstance)}`;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Local monotonic time for timeouts and rate limits (server time is only for datagram times). */
export function monotonicMs(): number {
  return performance.now();
}
