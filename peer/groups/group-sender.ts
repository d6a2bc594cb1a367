import { randomBytes } from 'node:crypto';
import {
  encodeDataBody,
  encodeNackBody,
  encodeRepairBody,
  fragmentGroupMessage,
  GROUP_DATAGRAM_TYPE,
  GROUP_MSG_ID_BYTES,
  MAX_GROUP_FRAGMENT_BYTES,
  SalaError,
  type GroupHeader,
  type NackBody,
} from '../../common/index.js';
import { encodeGroupText } from './group-message.js';
import { hex, monotonicMs, type ChannelPort } from './group-types.js';
import { TokenBucket } from './rate-limits.js';
import { SendHistory } from './send-history.js';

/**
 * Our side of one group: texts out as DATA fragments at consecutive seqs of our data lane, a
 * bounded history of them, REPAIRs for the NACKs that name them, and the tail announcement.
 *
 * A repair is sealed in the key epoch of the DATA datagram it repairs, only while we still hold
 * that key (the current epoch or one in its overlap), and only for a requester who was a member in
 * that epoch. So a repair never shows a member anything sent before it joined, however it asks (it
 * lacks that key), and nothing sent after a member left is ever sealed in a key it has. Each seq
 * is repaired at most once per repairIntervalMs, and all repairs share a rate budget: a NACK storm
 * costs a bounded number of datagrams.
 */
export class GroupSender {
  readonly #port: ChannelPort;
  readonly #history: SendHistory;
  readonly #sendBucket: TokenBucket;
  readonly #repairBucket: TokenBucket;
  #tailTimer: NodeJS.Timeout | undefined;
  /** The wait before the next repeat of the tail announcement. */
  #tailRepeatMs = 0;
  #lastDataSeq: number | undefined;
  /** Our first DATA seq sealed in the current key epoch: where a member of that epoch can start our stream. */
  #epochStart: { epoch: number; seq: number } | undefined;
  #isClosed = false;

  constructor(port: ChannelPort) {
    this.#port = port;
    const { tuning } = port.host;
    this.#history = new SendHistory(tuning.repairHistoryPerGroup, tuning.repairHistoryBytesPerGroup);
    this.#sendBucket = new TokenBucket(tuning.sendBurst, tuning.sendPerSecond);
    this.#repairBucket = new TokenBucket(tuning.repairBurst, tuning.repairsPerSecond);
  }

  /** Seals and sends a text; returns its id. Throws SALA_E_MESSAGE_TOO_LARGE, SALA_E_RATE_LIMIT or SALA_E_GROUP_NOT_MEMBER. */
  sendText(text: string): string {
    const payload = encodeGroupText(text);
    requireSender(this.#port);
    const msgId = new Uint8Array(randomBytes(GROUP_MSG_ID_BYTES));
    const fragments = fragmentGroupMessage(msgId, payload, MAX_GROUP_FRAGMENT_BYTES);
    const nowMs = monotonicMs();
    if (!this.#sendBucket.take(fragments.length, nowMs)) {
      const retryAfterMs = this.#sendBucket.waitMs(fragments.length, nowMs);
      throw new SalaError('SALA_E_RATE_LIMIT', `Too many group messages to ${this.#port.name} at once; wait ${retryAfterMs} ms and send again.`, {
        details: { retryAfterMs },
      });
    }
    const { epoch } = this.#port.epochs;
    // All fragments in one go, so they take consecutive seqs: receivers rely on it (SenderStream).
    for (const fragment of fragments) {
      const { datagram, seq } = this.#port.seal(GROUP_DATAGRAM_TYPE.DATA, encodeDataBody(fragment), epoch, 'data');
      this.#history.add(seq, epoch, fragment);
      this.#lastDataSeq = seq;
      if (this.#epochStart?.epoch !== epoch) this.#epochStart = { epoch, seq };
      this.#port.transmit(datagram);
    }
    this.#armTailAnnouncement();
    return hex(msgId);
  }

  /**
   * The multicast self-test probe: a NACK addressed to our own control lane, which carries no
   * stream, so members who receive it open it and ignore it.
   */
  makeProbe(): { datagram: Uint8Array; seq: number } {
    const senderIdx = requireSender(this.#port);
    const body = encodeNackBody({ targetSenderIdx: senderIdx, targetInstance: this.#port.host.controlInstance, ranges: [{ firstSeq: 0, count: 1 }] });
    return this.#port.seal(GROUP_DATAGRAM_TYPE.NACK, body, this.#port.epochs.epoch, 'control');
  }

  /** Answers a NACK for seqs of our data lane from the member `header.senderIdx`. */
  repair(header: GroupHeader, nack: NackBody, nowMs: number): void {
    const { epochs, host } = this.#port;
    for (const { firstSeq, count } of nack.ranges) {
      for (let seq = firstSeq; seq < firstSeq + count; seq += 1) {
        const entry = this.#history.get(seq);
        if (entry === undefined || nowMs - entry.repairedAtMs < host.tuning.repairIntervalMs) continue;
        if (!epochs.isHeld(entry.epoch, nowMs) || epochs.member(entry.epoch, header.senderIdx, nowMs) === undefined) continue;
        if (!this.#repairBucket.take(1, nowMs)) return;
        entry.repairedAtMs = nowMs;
        // On the control lane: if it is lost, the receiver still misses the DATA seq and asks again.
        const { datagram } = this.#port.seal(GROUP_DATAGRAM_TYPE.REPAIR, encodeRepairBody(seq, entry.fragment), entry.epoch, 'control');
        host.counters.repairsSent += 1;
        this.#port.transmit(datagram);
      }
    }
  }

  /** Forgets what we sent (a new group incarnation: nobody can ask for it any more). */
  clear(): void {
    this.#history.clear();
    this.#lastDataSeq = undefined;
    this.#epochStart = undefined;
    clearTimeout(this.#tailTimer);
    this.#tailTimer = undefined;
  }

  close(): void {
    this.#isClosed = true;
    this.clear();
  }

  /**
   * tailAnnounceDelayMs after our last DATA, we send a NACK addressed to our own data lane naming
   * its last seq. Receivers read a NACK whose sender is its target as "my stream goes up to here"
   * (SRM's session message, in the NACK layout): without it, a lost last datagram would go
   * unnoticed until we next sent something. It is sealed in the key epoch of our last DATA and its
   * range starts at our first DATA seq of that epoch: a member who never saw our stream (its first
   * datagrams were lost, or went down a link that was being replaced) starts it there and asks for
   * all of it. Only members of that epoch can open it, and they may read all of those; nothing
   * older is offered, so a late joiner gets no history.
   *
   * The announcement is repeated after 1 s, 2 s, 4 s… up to every tailRepeatMaxMs while that key
   * epoch lasts, so a member whose cable was out (and missed the messages and the first
   * announcement) notices and repairs the gap when it is back, though nobody sends anything new.
   */
  #armTailAnnouncement(): void {
    this.#tailRepeatMs = 1_000;
    this.#scheduleTail(this.#port.host.tuning.tailAnnounceDelayMs);
  }

  #scheduleTail(delayMs: number): void {
    clearTimeout(this.#tailTimer);
    if (this.#isClosed) return;
    this.#tailTimer = setTimeout(() => this.#announceTail(), delayMs);
    this.#tailTimer.unref();
  }

  #announceTail(): void {
    this.#tailTimer = undefined;
    const last = this.#lastDataSeq;
    const { senderIdx, host } = this.#port;
    if (this.#isClosed || last === undefined || senderIdx === undefined) return;
    const epoch = this.#epochStart?.epoch ?? this.#port.epochs.epoch;
    // That epoch's key is gone (rotated, overlap over): nobody could be repaired from it any more.
    if (this.#port.epochs.key(epoch, monotonicMs()) === undefined) return;
    this.#scheduleTail(this.#tailRepeatMs);
    this.#tailRepeatMs = Math.min(this.#tailRepeatMs * 2, host.tuning.tailRepeatMaxMs);
    if (!this.#port.controlBucket.take(1, monotonicMs())) return;
    try {
      // Sealed in the epoch of the DATA it describes, so only that epoch's members read it.
      const start = Math.max(this.#epochStart?.seq ?? last, last - host.tuning.maxGapSeqs + 1);
      const body = encodeNackBody({ targetSenderIdx: senderIdx, targetInstance: host.dataInstance, ranges: [{ firstSeq: start, count: last - start + 1 }] });
      const { datagram } = this.#port.seal(GROUP_DATAGRAM_TYPE.NACK, body, epoch, 'control');
      host.counters.tailAnnouncementsSent += 1;
      this.#port.transmit(datagram);
    } catch (err) {
      host.log.warn('group.announce_failed', { group: this.#port.name, message: String(err) });
    }
  }
}

export function requireSender(port: ChannelPort): number {
  if (port.senderIdx === undefined) {
    throw new SalaError('SALA_E_GROUP_NOT_MEMBER', `This session is not (or no longer) a member of ${port.name}; join it again.`);
  }
  return port.senderIdx;
}
