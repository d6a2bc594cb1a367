import { ConfigInvalidError, SalaError } from '../errors.js';

/**
 * The plaintext bodies carried inside sealed group datagrams (common/crypto/group-datagram.ts seals
 * and opens them; this file only lays out bytes), the splitting of a group message into DATA
 * fragments, and their bounded reassembly. All integers are big-endian, like the datagram header.
 *
 * DATA (type 1), one fragment of a group message:
 *
 *     msgId 16 | fragIndex u16 | fragCount u16 | bytes…
 *
 * REPAIR (type 3), a DATA fragment sent again after a NACK. It travels under a fresh seq (a seq is a
 * nonce and is never reused) and names the seq of the DATA datagram it replaces, so a receiver can
 * fill the gap it saw in that sender's sequence:
 *
 *     repairedSeq u64 | msgId 16 | fragIndex u16 | fragCount u16 | bytes…
 *
 * NACK (type 2), a receiver asking one sender to repair the seqs it missed:
 *
 *     targetSenderIdx u16 | targetInstance 8 | rangeCount u8 | rangeCount × (firstSeq u64 | count u16)
 *
 * A seq belongs to one sender instance and never restarts within it (not even on an epoch change),
 * so (senderIdx, instance, seq) names one datagram. Ranges are ascending and disjoint, at most
 * MAX_NACK_RANGES of them naming at most MAX_NACK_SEQS seqs in total: a NACK is authenticated but
 * makes the sender multicast one REPAIR per seq, so its size bounds the amplification a member
 * can cause with one datagram.
 */
export const GROUP_DATAGRAM_TYPE = Object.freeze({ DATA: 1, NACK: 2, REPAIR: 3 } as const);
export type GroupDatagramType = (typeof GROUP_DATAGRAM_TYPE)[keyof typeof GROUP_DATAGRAM_TYPE];

export function isGroupDatagramType(value: number): value is GroupDatagramType {
  return value === GROUP_DATAGRAM_TYPE.DATA || value === GROUP_DATAGRAM_TYPE.NACK || value === GROUP_DATAGRAM_TYPE.REPAIR;
}

export const GROUP_MSG_ID_BYTES = 16;
export const GROUP_INSTANCE_BYTES = 8;
/** msgId, fragIndex, fragCount. */
export const DATA_BODY_OVERHEAD_BYTES = GROUP_MSG_ID_BYTES + 2 + 2;
/** repairedSeq, then a DATA body. */
export const REPAIR_BODY_OVERHEAD_BYTES = 8 + DATA_BODY_OVERHEAD_BYTES;
const NACK_FIXED_BYTES = 2 + GROUP_INSTANCE_BYTES + 1;
const NACK_RANGE_BYTES = 8 + 2;
export const MAX_NACK_RANGES = 16;
export const MAX_NACK_SEQS = 64;
/**
 * One encoded group message (the text, at most 8 KiB of UTF-8 by CONTRACT.md, plus its envelope):
 * twice the text limit leaves the envelope ample room and still bounds what a receiver buffers.
 */
export const MAX_GROUP_MESSAGE_BYTES = 16 * 1024;
/** Fragments per message: 16 KiB in fragments of ~1 KiB (MAX_GROUP_FRAGMENT_BYTES). */
export const MAX_GROUP_FRAGMENTS = 16;

export interface GroupFragment {
  msgId: Uint8Array;
  fragIndex: number;
  fragCount: number;
  bytes: Uint8Array;
}

export interface NackRange {
  firstSeq: number;
  count: number;
}

export interface NackBody {
  targetSenderIdx: number;
  targetInstance: Uint8Array;
  ranges: readonly NackRange[];
}

export type GroupBody =
  | { type: typeof GROUP_DATAGRAM_TYPE.DATA; fragment: GroupFragment }
  | { type: typeof GROUP_DATAGRAM_TYPE.REPAIR; repairedSeq: number; fragment: GroupFragment }
  | ({ type: typeof GROUP_DATAGRAM_TYPE.NACK } & NackBody);

function invalid(why: string): SalaError {
  return new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', `A group datagram was dropped: ${why}.`);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readSafeU64(dv: DataView, offset: number, what: string): number {
  const value = dv.getBigUint64(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`its ${what} is out of range`);
  return Number(value);
}

function checkFragmentShape(fragment: GroupFragment, maxFragments: number): void {
  const { msgId, fragIndex, fragCount } = fragment;
  if (msgId.length !== GROUP_MSG_ID_BYTES) throw invalid('its message id is not 16 bytes');
  if (!Number.isInteger(fragCount) || fragCount < 1 || fragCount > maxFragments) {
    throw invalid(`its fragment count ${fragCount} is not between 1 and ${maxFragments}`);
  }
  if (!Number.isInteger(fragIndex) || fragIndex < 0 || fragIndex >= fragCount) {
    throw invalid(`its fragment index ${fragIndex} is not below its count ${fragCount}`);
  }
}

function writeFragment(out: Uint8Array, offset: number, fragment: GroupFragment): void {
  checkFragmentShape(fragment, MAX_GROUP_FRAGMENTS);
  out.set(fragment.msgId, offset);
  const dv = view(out);
  dv.setUint16(offset + GROUP_MSG_ID_BYTES, fragment.fragIndex);
  dv.setUint16(offset + GROUP_MSG_ID_BYTES + 2, fragment.fragCount);
  out.set(fragment.bytes, offset + DATA_BODY_OVERHEAD_BYTES);
}

/** The fragment's bytes are a view into `body`, not a copy. */
function readFragment(body: Uint8Array, offset: number): GroupFragment {
  if (body.length < offset + DATA_BODY_OVERHEAD_BYTES) throw invalid('its body is truncated');
  const dv = view(body);
  const fragment = {
    msgId: body.subarray(offset, offset + GROUP_MSG_ID_BYTES),
    fragIndex: dv.getUint16(offset + GROUP_MSG_ID_BYTES),
    fragCount: dv.getUint16(offset + GROUP_MSG_ID_BYTES + 2),
    bytes: body.subarray(offset + DATA_BODY_OVERHEAD_BYTES),
  };
  checkFragmentShape(fragment, MAX_GROUP_FRAGMENTS);
  return fragment;
}

export function encodeDataBody(fragment: GroupFragment): Uint8Array {
  const out = new Uint8Array(DATA_BODY_OVERHEAD_BYTES + fragment.bytes.length);
  writeFragment(out, 0, fragment);
  return out;
}

export function encodeRepairBody(repairedSeq: number, fragment: GroupFragment): Uint8Array {
  if (!Number.isSafeInteger(repairedSeq) || repairedSeq < 0) throw invalid('its repaired seq is out of range');
  const out = new Uint8Array(REPAIR_BODY_OVERHEAD_BYTES + fragment.bytes.length);
  view(out).setBigUint64(0, BigInt(repairedSeq));
  writeFragment(out, 8, fragment);
  return out;
}

function checkNackRanges(ranges: readonly NackRange[]): void {
  if (ranges.length < 1 || ranges.length > MAX_NACK_RANGES) throw invalid(`a NACK carries 1 to ${MAX_NACK_RANGES} ranges`);
  let total = 0;
  let nextFree = 0;
  for (const { firstSeq, count } of ranges) {
    if (!Number.isSafeInteger(firstSeq) || firstSeq < nextFree) throw invalid('its NACK ranges are not ascending and disjoint');
    if (!Number.isInteger(count) || count < 1 || count > MAX_NACK_SEQS) throw invalid('a NACK range has a bad length');
    if (count - 1 > Number.MAX_SAFE_INTEGER - firstSeq) throw invalid('a NACK range is out of range');
    total += count;
    nextFree = firstSeq + count;
  }
  if (total > MAX_NACK_SEQS) throw invalid(`a NACK names more than ${MAX_NACK_SEQS} seqs`);
}

export function encodeNackBody(nack: NackBody): Uint8Array {
  if (!Number.isInteger(nack.targetSenderIdx) || nack.targetSenderIdx < 0 || nack.targetSenderIdx > 0xffff) {
    throw invalid('its NACK target index is out of range');
  }
  if (nack.targetInstance.length !== GROUP_INSTANCE_BYTES) throw invalid('its NACK target instance is not 8 bytes');
  checkNackRanges(nack.ranges);
  const out = new Uint8Array(NACK_FIXED_BYTES + nack.ranges.length * NACK_RANGE_BYTES);
  const dv = view(out);
  dv.setUint16(0, nack.targetSenderIdx);
  out.set(nack.targetInstance, 2);
  dv.setUint8(2 + GROUP_INSTANCE_BYTES, nack.ranges.length);
  nack.ranges.forEach(({ firstSeq, count }, i) => {
    const at = NACK_FIXED_BYTES + i * NACK_RANGE_BYTES;
    dv.setBigUint64(at, BigInt(firstSeq));
    dv.setUint16(at + 8, count);
  });
  return out;
}

/**
 * Compresses missing seqs (any order, duplicates allowed) into NACK ranges, keeping the lowest ones
 * that fit one NACK; ask again for the rest after the repairs arrive.
 */
export function nackRangesFromSeqs(seqs: Iterable<number>): NackRange[] {
  const sorted = [...new Set(seqs)].filter((s) => Number.isSafeInteger(s) && s >= 0).sort((a, b) => a - b);
  const ranges: NackRange[] = [];
  let total = 0;
  for (const seq of sorted) {
    if (total === MAX_NACK_SEQS) break;
    const last = ranges.at(-1);
    if (last !== undefined && last.firstSeq + last.count === seq) {
      last.count += 1;
    } else {
      if (ranges.length === MAX_NACK_RANGES) break;
      ranges.push({ firstSeq: seq, count: 1 });
    }
    total += 1;
  }
  return ranges;
}

/**
 * Decodes an opened datagram's body by its header type; throws SALA_E_GROUP_DATAGRAM_INVALID for a
 * body that does not match its layout exactly. Fragment bytes are views into `body`.
 */
export function decodeGroupBody(type: GroupDatagramType, body: Uint8Array): GroupBody {
  switch (type) {
    case GROUP_DATAGRAM_TYPE.DATA:
      return { type, fragment: readFragment(body, 0) };
    case GROUP_DATAGRAM_TYPE.REPAIR: {
      if (body.length < REPAIR_BODY_OVERHEAD_BYTES) throw invalid('its body is truncated');
      return { type, repairedSeq: readSafeU64(view(body), 0, 'repaired seq'), fragment: readFragment(body, 8) };
    }
    case GROUP_DATAGRAM_TYPE.NACK: {
      if (body.length < NACK_FIXED_BYTES) throw invalid('its body is truncated');
      const dv = view(body);
      const rangeCount = dv.getUint8(2 + GROUP_INSTANCE_BYTES);
      if (body.length !== NACK_FIXED_BYTES + rangeCount * NACK_RANGE_BYTES) throw invalid('its NACK length does not match its range count');
      const ranges: NackRange[] = [];
      for (let i = 0; i < rangeCount; i += 1) {
        const at = NACK_FIXED_BYTES + i * NACK_RANGE_BYTES;
        ranges.push({ firstSeq: readSafeU64(dv, at, 'NACK seq'), count: dv.getUint16(at + 8) });
      }
      checkNackRanges(ranges);
      return {
        type,
        targetSenderIdx: dv.getUint16(0),
        targetInstance: body.subarray(2, 2 + GROUP_INSTANCE_BYTES),
        ranges,
      };
    }
    default:
      return assertNever(type);
  }
}

function assertNever(value: never): never {
  throw invalid(`its type ${String(value)} is unknown`);
}

/**
 * Splits an encoded group message into fragments of at most `maxFragmentBytes` (pass
 * MAX_GROUP_FRAGMENT_BYTES, which leaves room to resend any fragment as a REPAIR). An empty message
 * is one empty fragment. Throws SALA_E_MESSAGE_TOO_LARGE beyond what receivers reassemble.
 */
export function fragmentGroupMessage(msgId: Uint8Array, bytes: Uint8Array, maxFragmentBytes: number): GroupFragment[] {
  if (msgId.length !== GROUP_MSG_ID_BYTES) throw invalid('its message id is not 16 bytes');
  if (!Number.isInteger(maxFragmentBytes) || maxFragmentBytes < 1) throw invalid('the fragment size is not a positive integer');
  const fragCount = Math.max(1, Math.ceil(bytes.length / maxFragmentBytes));
  if (bytes.length > MAX_GROUP_MESSAGE_BYTES || fragCount > MAX_GROUP_FRAGMENTS) {
    throw new SalaError(
      'SALA_E_MESSAGE_TOO_LARGE',
      `This group message encodes to ${bytes.length} bytes in ${fragCount} fragments; the limit is ` +
        `${MAX_GROUP_MESSAGE_BYTES} bytes in ${MAX_GROUP_FRAGMENTS} fragments. Send a shorter message.`,
    );
  }
  const fragments: GroupFragment[] = [];
  for (let fragIndex = 0; fragIndex < fragCount; fragIndex += 1) {
    const start = fragIndex * maxFragmentBytes;
    fragments.push({ msgId, fragIndex, fragCount, bytes: bytes.subarray(start, start + maxFragmentBytes) });
  }
  return fragments;
}

export interface ReassemblerOptions {
  /** Partial messages held at once, all senders together. */
  maxPartialMessages?: number;
  /** Partial messages one sender may hold, so one member cannot push out everyone else's. */
  maxPartialMessagesPerSender?: number;
  /** Fragment bytes held at once, all partial messages together; at least maxMessageBytes. */
  maxBufferedBytes?: number;
  /** Bytes one reassembled message may have. */
  maxMessageBytes?: number;
  /** A partial message still incomplete this long after its first fragment is dropped. */
  timeoutMs?: number;
  /** Completed (sender, msgId) pairs remembered, so a late duplicate or REPAIR is not delivered twice. */
  maxCompletedRemembered?: number;
  /** How long a completed pair is remembered. */
  completedTtlMs?: number;
}

export const REASSEMBLER_DEFAULTS = Object.freeze({
  maxPartialMessages: 64,
  maxPartialMessagesPerSender: 8,
  maxBufferedBytes: 512 * 1024,
  maxMessageBytes: MAX_GROUP_MESSAGE_BYTES,
  timeoutMs: 30_000,
  maxCompletedRemembered: 2048,
  completedTtlMs: 120_000,
});

interface PartialMessage {
  readonly sender: string;
  readonly fragCount: number;
  readonly parts: (Uint8Array | undefined)[];
  readonly startedMs: number;
  received: number;
  bytes: number;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigInvalidError(name, 'must be a positive integer');
  return value;
}

/**
 * Puts fragments back together per (sender, msgId), in any order, ignoring duplicates. Only
 * fragments from authenticated datagrams reach it, but a member may still be buggy or hostile, so
 * every total is bounded: partial messages (overall and per sender), buffered bytes, bytes per
 * message, and age. When a bound is hit the oldest partial message is dropped (the sender's own
 * oldest for the per-sender bound); its sender can NACK-repair or the message is lost, never memory.
 *
 * `sender` is any string naming the authenticated sender (e.g. its user and instance); `nowMs` is
 * passed in so tests drive the clock and nothing here owns a timer.
 */
export class Reassembler {
  readonly #maxPartial: number;
  readonly #maxPartialPerSender: number;
  readonly #maxBufferedBytes: number;
  readonly #maxMessageBytes: number;
  readonly #timeoutMs: number;
  readonly #maxCompleted: number;
  readonly #completedTtlMs: number;
  /** Insertion order is creation order: the first entry is the oldest. */
  readonly #partials = new Map<string, PartialMessage>();
  readonly #perSender = new Map<string, number>();
  /** key → forget-after time, in insertion order. */
  readonly #completed = new Map<string, number>();
  #bufferedBytes = 0;

  constructor(options: ReassemblerOptions = {}) {
    const o = { ...REASSEMBLER_DEFAULTS, ...options };
    this.#maxPartial = positiveInteger(o.maxPartialMessages, 'maxPartialMessages');
    this.#maxPartialPerSender = positiveInteger(o.maxPartialMessagesPerSender, 'maxPartialMessagesPerSender');
    this.#maxMessageBytes = positiveInteger(o.maxMessageBytes, 'maxMessageBytes');
    this.#maxBufferedBytes = positiveInteger(o.maxBufferedBytes, 'maxBufferedBytes');
    if (this.#maxBufferedBytes < this.#maxMessageBytes) {
      throw new ConfigInvalidError('maxBufferedBytes', 'must be at least maxMessageBytes');
    }
    this.#timeoutMs = positiveInteger(o.timeoutMs, 'timeoutMs');
    this.#maxCompleted = positiveInteger(o.maxCompletedRemembered, 'maxCompletedRemembered');
    this.#completedTtlMs = positiveInteger(o.completedTtlMs, 'completedTtlMs');
  }

  get partialCount(): number {
    return this.#partials.size;
  }

  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  get completedCount(): number {
    return this.#completed.size;
  }

  /**
   * Adds one fragment; returns the whole message when this fragment completes it, else undefined
   * (incomplete, a duplicate, or part of a message already delivered). Throws
   * SALA_E_GROUP_DATAGRAM_INVALID (and drops the partial message) when the fragment contradicts
   * the fragments before it or the message outgrows maxMessageBytes.
   */
  add(sender: string, fragment: GroupFragment, nowMs: number): Uint8Array | undefined {
    this.evictExpired(nowMs);
    checkFragmentShape(fragment, MAX_GROUP_FRAGMENTS);
    const key = `${sender}\0${Buffer.from(fragment.msgId).toString('hex')}`;
    if (this.#completed.has(key)) return undefined;
    if (fragment.bytes.length > this.#maxMessageBytes) throw invalid('its message is over the size limit');
    let partial = this.#partials.get(key);
    if (partial !== undefined && partial.fragCount !== fragment.fragCount) {
      this.#drop(key);
      throw invalid('its fragment count differs from earlier fragments of the same message');
    }
    if (fragment.fragCount === 1) {
      this.#remember(key, nowMs);
      return Uint8Array.from(fragment.bytes);
    }
    if (partial === undefined) {
      partial = this.#start(key, sender, fragment.fragCount, nowMs);
    } else if (partial.parts[fragment.fragIndex] !== undefined) {
      return undefined;
    }
    if (partial.bytes + fragment.bytes.length > this.#maxMessageBytes) {
      this.#drop(key);
      throw invalid('its message is over the size limit');
    }
    this.#makeRoom(key, fragment.bytes.length);

    partial.parts[fragment.fragIndex] = Uint8Array.from(fragment.bytes);
    partial.received += 1;
    partial.bytes += fragment.bytes.length;
    this.#bufferedBytes += fragment.bytes.length;
    if (partial.received < partial.fragCount) return undefined;

    const message = Buffer.concat(partial.parts as Uint8Array[], partial.bytes);
    this.#drop(key);
    this.#remember(key, nowMs);
    return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  }

  /** Drops partial messages older than timeoutMs and forgets expired completions; returns how many partials went. */
  evictExpired(nowMs: number): number {
    let evicted = 0;
    for (const [key, partial] of this.#partials) {
      if (nowMs - partial.startedMs < this.#timeoutMs) break;
      this.#drop(key);
      evicted += 1;
    }
    for (const [key, forgetMs] of this.#completed) {
      if (nowMs < forgetMs) break;
      this.#completed.delete(key);
    }
    return evicted;
  }

  /** Forgets everything a sender has in flight (it left, or its key epoch ended). */
  dropSender(sender: string): void {
    for (const [key, partial] of this.#partials) if (partial.sender === sender) this.#drop(key);
  }

  #start(key: string, sender: string, fragCount: number, nowMs: number): PartialMessage {
    if ((this.#perSender.get(sender) ?? 0) >= this.#maxPartialPerSender) {
      for (const [oldKey, old] of this.#partials) {
        if (old.sender === sender) {
          this.#drop(oldKey);
          break;
        }
      }
    }
    if (this.#partials.size >= this.#maxPartial) this.#dropOldest(key);
    const partial: PartialMessage = {
      sender,
      fragCount,
      parts: new Array<Uint8Array | undefined>(fragCount).fill(undefined),
      startedMs: nowMs,
      received: 0,
      bytes: 0,
    };
    this.#partials.set(key, partial);
    this.#perSender.set(sender, (this.#perSender.get(sender) ?? 0) + 1);
    return partial;
  }

  /** Drops the oldest other partial messages until `bytes` more fit under maxBufferedBytes. */
  #makeRoom(keep: string, bytes: number): void {
    while (this.#bufferedBytes + bytes > this.#maxBufferedBytes) {
      if (!this.#dropOldest(keep)) return;
    }
  }

  #dropOldest(keep: string): boolean {
    for (const key of this.#partials.keys()) {
      if (key !== keep) {
        this.#drop(key);
        return true;
      }
    }
    return false;
  }

  #drop(key: string): void {
    const partial = this.#partials.get(key);
    if (partial === undefined) return;
    this.#partials.delete(key);
    this.#bufferedBytes -= partial.bytes;
    const count = (this.#perSender.get(partial.sender) ?? 1) - 1;
    if (count <= 0) this.#perSender.delete(partial.sender);
    else this.#perSender.set(partial.sender, count);
  }

  #remember(key: string, nowMs: number): void {
    this.#completed.delete(key);
    this.#completed.set(key, nowMs + this.#completedTtlMs);
    while (this.#completed.size > this.#maxCompleted) {
      const oldest = this.#completed.keys().next();
      if (oldest.done === true) break;
      this.#completed.delete(oldest.value);
    }
  }
}
