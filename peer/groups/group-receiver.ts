import {
  encodeNackBody,
  nackRangesFromSeqs,
  GROUP_DATAGRAM_TYPE,
  SalaError,
  type GroupFragment,
  type GroupHeader,
  type NackBody,
} from '../../common/index.js';
import type { GroupMember } from './group-epochs.js';
import { decodeGroupText } from './group-message.js';
import { dataLaneOf, isDataLane, monotonicMs, streamKey, type ChannelPort } from './group-types.js';
import { SenderStream, type StreamStep } from './sender-stream.js';

interface StreamEntry {
  readonly stream: SenderStream;
  /** The sender's user name (a sender index names one member for the life of a group incarnation). */
  readonly user: string;
}

/**
 * The other members' side of one group: one SenderStream per sender instance (order, gaps), the
 * timer that sends NACKs for gaps and gives up on them, and delivery of complete messages.
 *
 * NACKs are coalesced (one per stream per timer run, up to 64 seqs), delayed by nackDelayMs so
 * that mere reordering costs nothing, repeated after nackRetryMs, suppressed while another
 * member's NACK for the same seqs is recent, and bounded by the group's control budget.
 */
export class GroupReceiver {
  readonly #port: ChannelPort;
  readonly #streams = new Map<string, StreamEntry>();
  #gapTimer: NodeJS.Timeout | undefined;
  #gapTimerDueMs = Number.POSITIVE_INFINITY;
  #isClosed = false;

  constructor(port: ChannelPort) {
    this.#port = port;
  }

  /** A DATA datagram: creates the sender's stream at its first seq (a late joiner starts there). */
  onData(header: GroupHeader, member: GroupMember, fragment: GroupFragment, nowMs: number): void {
    this.#accept(this.#streamFor(header, member, nowMs), header.seq, fragment, header.timeMs, nowMs);
  }

  /** A REPAIR: fills a seq of a stream we follow; a stream we never saw began before we joined. */
  onRepair(header: GroupHeader, repairedSeq: number, fragment: GroupFragment, nowMs: number): void {
    const entry = this.#streams.get(streamKey(this.#port.groupIdHex, header.senderIdx, dataLaneOf(header.instance)));
    if (entry !== undefined) this.#accept(entry, repairedSeq, fragment, header.timeMs, nowMs);
  }

  /** A NACK for another member's stream: a tail announcement when that member sent it, else a peer's request. */
  onNack(header: GroupHeader, member: GroupMember, nack: NackBody, nowMs: number): void {
    const isTail = header.senderIdx === nack.targetSenderIdx;
    let entry = this.#streams.get(streamKey(this.#port.groupIdHex, nack.targetSenderIdx, nack.targetInstance));
    if (entry === undefined) {
      // A tail announcement of a stream we never saw: its first datagrams did not reach us. It is
      // sealed in a key epoch we hold, and names the sender's first seq of that epoch: start there.
      const first = nack.ranges[0];
      if (!isTail || first === undefined || !isDataLane(nack.targetInstance)) return; // someone else's stream, or a self-test probe
      entry = this.#openStream(streamKey(this.#port.groupIdHex, nack.targetSenderIdx, nack.targetInstance), nack.targetSenderIdx, nack.targetInstance, first.firstSeq, member, nowMs);
    }
    if (isTail) {
      const last = nack.ranges.at(-1);
      if (last !== undefined) this.#settle(entry, entry.stream.noteHighest(last.firstSeq + last.count - 1, nowMs));
    } else {
      // If we miss those seqs too, the repair that NACK brings serves us as well.
      entry.stream.noteNacked(nack.ranges, nowMs);
    }
    if (entry.stream.hasMissing) this.#scheduleGapTimer(nowMs);
  }

  /** Forgets the streams of senders no longer in any key epoch we hold. */
  keepOnly(senderIndexes: ReadonlySet<number>): void {
    for (const { stream } of [...this.#streams.values()]) if (!senderIndexes.has(stream.senderIdx)) this.#drop(stream);
  }

  clear(): void {
    for (const { stream } of this.#streams.values()) stream.clear(this.#port.host.reassembler);
    this.#streams.clear();
    clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
    this.#gapTimerDueMs = Number.POSITIVE_INFINITY;
  }

  close(): void {
    this.#isClosed = true;
    this.clear();
  }

  #streamFor(header: GroupHeader, member: GroupMember, nowMs: number): StreamEntry {
    const key = streamKey(this.#port.groupIdHex, header.senderIdx, header.instance);
    return this.#streams.get(key) ?? this.#openStream(key, header.senderIdx, header.instance, header.seq, member, nowMs);
  }

  #openStream(key: string, senderIdx: number, instance: Uint8Array, firstSeq: number, member: GroupMember, nowMs: number): StreamEntry {
    // A member's older instances (earlier runs) go first once it has too many.
    const ofSender = [...this.#streams.values()].filter((s) => s.stream.senderIdx === senderIdx);
    if (ofSender.length >= this.#port.host.tuning.maxInstancesPerSender) {
      const oldest = ofSender.reduce((a, b) => (a.stream.lastActivityMs <= b.stream.lastActivityMs ? a : b));
      this.#drop(oldest.stream);
    }
    const stream = new SenderStream({
      key,
      senderIdx,
      instance: Uint8Array.from(instance),
      firstSeq,
      maxSpan: this.#port.host.tuning.maxGapSeqs,
      nowMs,
    });
    const entry = { stream, user: member.user };
    this.#streams.set(key, entry);
    return entry;
  }

  #accept(entry: StreamEntry, seq: number, fragment: GroupFragment, timeMs: number, nowMs: number): void {
    this.#settle(entry, entry.stream.accept({ seq, fragment, timeMs }, this.#port.host.reassembler, nowMs));
    if (entry.stream.hasMissing) this.#scheduleGapTimer(nowMs);
  }

  /** Delivers what a stream released and reports losses and bad fragments. */
  #settle(entry: StreamEntry, step: StreamStep): void {
    const { host, name } = this.#port;
    if (step.error !== undefined) host.warn(step.error);
    if (step.lost > 0) {
      host.counters.seqsLost += step.lost;
      // No dedicated code exists for this yet: the closest is a failed network path.
      host.warn(
        new SalaError(
          'SALA_E_GROUP_MESSAGES_LOST',
          `${step.lost} group datagram(s) from ${entry.user} in ${name} were lost and could not be repaired; some of their messages may be missing.`,
        ),
      );
    }
    for (const message of step.delivered) {
      let text: string;
      try {
        text = decodeGroupText(message.bytes);
      } catch (err) {
        host.warn(err as SalaError);
        continue;
      }
      host.counters.messagesDelivered += 1;
      host.deliver({ id: message.id, group: name, from: entry.user, text, at: message.atMs });
    }
  }

  #scheduleGapTimer(nowMs: number): void {
    if (this.#isClosed) return;
    const { nackDelayMs, nackRetryMs, repairTimeoutMs } = this.#port.host.tuning;
    let due: number | undefined;
    for (const { stream } of this.#streams.values()) {
      const at = stream.nextDueMs(nackDelayMs, nackRetryMs, repairTimeoutMs);
      if (at !== undefined && (due === undefined || at < due)) due = at;
    }
    if (due === undefined || due >= this.#gapTimerDueMs) return;
    clearTimeout(this.#gapTimer);
    this.#gapTimerDueMs = due;
    this.#gapTimer = setTimeout(() => this.#onGapTimer(), Math.max(0, Math.ceil(due - nowMs)));
    this.#gapTimer.unref();
  }

  #onGapTimer(): void {
    this.#gapTimer = undefined;
    this.#gapTimerDueMs = Number.POSITIVE_INFINITY;
    if (this.#isClosed) return;
    const nowMs = monotonicMs();
    const { host } = this.#port;
    const { nackDelayMs, nackRetryMs, repairTimeoutMs } = host.tuning;
    for (const entry of [...this.#streams.values()]) {
      this.#settle(entry, entry.stream.expire(nowMs, repairTimeoutMs));
      const ranges = nackRangesFromSeqs(entry.stream.nackCandidates(nowMs, nackDelayMs, nackRetryMs));
      if (ranges.length === 0) continue;
      // Counted as asked even when the budget says no: the next try is then nackRetryMs away.
      entry.stream.noteNacked(ranges, nowMs);
      if (this.#port.senderIdx === undefined || !this.#port.controlBucket.take(1, nowMs)) continue;
      try {
        const body = encodeNackBody({ targetSenderIdx: entry.stream.senderIdx, targetInstance: entry.stream.instance, ranges });
        const { datagram } = this.#port.seal(GROUP_DATAGRAM_TYPE.NACK, body, this.#port.epochs.epoch, 'control');
        host.counters.nacksSent += 1;
        this.#port.transmit(datagram);
      } catch (err) {
        host.log.warn('group.nack_failed', { group: this.#port.name, message: String(err) });
      }
    }
    this.#scheduleGapTimer(nowMs);
  }

  #drop(stream: SenderStream): void {
    stream.clear(this.#port.host.reassembler);
    this.#streams.delete(stream.key);
  }
}
