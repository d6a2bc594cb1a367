import { ConfigInvalidError, SalaError, type SalaErrorCode } from '../errors.js';
import {
  GROUP_INSTANCE_BYTES,
  REPAIR_BODY_OVERHEAD_BYTES,
  isGroupDatagramType,
  type GroupDatagramType,
} from '../wire/group-fragments.js';
import { AEAD_KEY_BYTES, AEAD_TAG_BYTES, sodiumAead } from './aead.js';
import { noiseNonce } from './noise/cipher-state.js';
import { SenderWindows, type SenderWindowsOptions } from './replay-window.js';
import { SIGNATURE_BYTES, signDetached, verifyDetached } from './signing.js';
import { sodium } from './sodium.js';

/**
 * Group datagrams (SECURITY.md §2 "Group datagram", C4, H3): one UDP multicast datagram of at most
 * 1200 bytes, laid out as
 *
 *     header (48 bytes, the AEAD's associated data, big-endian):
 *       ver u8 | type u8 | groupId 16 | epoch u32 | senderIdx u16 | instance 8 | seq u64 | timeMs u64
 *     ciphertext = ChaCha20-Poly1305-IETF(k_s, nonce, ad = header,
 *                                         body ‖ Ed25519(sigSk, "sala/v1/group\0" ‖ header ‖ body))
 *     k_s   = BLAKE2b-256(key = groupKey, "sala/v1/gsend\0" ‖ groupId ‖ epoch ‖ senderIdx ‖ instance)
 *     nonce = 0^4 ‖ LE64(seq)
 *
 * epoch and senderIdx enter k_s in their header encoding (u32 and u16 big-endian). `instance` is 8
 * random bytes drawn once per process (generateGroupInstance), so two runs of the same sender, or
 * two senders, never share a key and a (key, nonce) pair never repeats (C4); within an instance the
 * sender's seq counter only goes up. Bodies (DATA, NACK, REPAIR) are laid out in
 * common/wire/group-fragments.ts.
 *
 * openGroupDatagram() checks in the order H3 demands, cheapest and least trusting first: header
 * (length, version, type, group, epoch, member), per-sender rate, replay window, time, AEAD, then
 * Ed25519. Anyone without the group key fails at the AEAD, so garbage and outsiders never cost a
 * signature verification; only a fully verified datagram is marked in the replay window.
 */
export const GROUP_DATAGRAM_VERSION = 1;
export const GROUP_HEADER_BYTES = 48;
export const GROUP_ID_BYTES = 16;
/** Fits one unfragmented UDP datagram on any LAN (IPv6 minimum MTU 1280, minus IP/UDP headers). */
export const MAX_GROUP_DATAGRAM_BYTES = 1200;
/** An empty body: header, tag and signature. */
export const MIN_GROUP_DATAGRAM_BYTES = GROUP_HEADER_BYTES + SIGNATURE_BYTES + AEAD_TAG_BYTES;
/** 1200 − 48 − 64 − 16 = 1072 body bytes per datagram. */
export const MAX_GROUP_BODY_BYTES = MAX_GROUP_DATAGRAM_BYTES - MIN_GROUP_DATAGRAM_BYTES;
/** 1072 − 28 = 1044: DATA fragments this size can always be resent inside a REPAIR. */
export const MAX_GROUP_FRAGMENT_BYTES = MAX_GROUP_BODY_BYTES - REPAIR_BODY_OVERHEAD_BYTES;
/** A datagram's signed time may differ from server time (H4) by this much (H3). */
export const GROUP_CLOCK_SKEW_MS = 30_000;

const SEND_KEY_DOMAIN = new TextEncoder().encode('sala/v1/gsend\0');
const SIGN_DOMAIN = 'sala/v1/group\0';
const MAX_EPOCH = 0xffff_ffff;
const MAX_SENDER_IDX = 0xffff;

export interface GroupHeader {
  version: number;
  type: GroupDatagramType;
  groupId: Uint8Array;
  epoch: number;
  senderIdx: number;
  instance: Uint8Array;
  seq: number;
  timeMs: number;
}

export interface OpenedGroupDatagram {
  header: GroupHeader;
  body: Uint8Array;
}

function fail(code: SalaErrorCode, why: string): SalaError {
  return new SalaError(code, `A group datagram was dropped: ${why}.`);
}

function checkInteger(value: number, max: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `its ${what} is out of range`);
}

function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `its ${what} is not ${length} bytes`);
}

/** 8 random bytes naming this process run as a sender; draw once per process, never persist. */
export function generateGroupInstance(): Uint8Array {
  return sodium().randombytes_buf(GROUP_INSTANCE_BYTES);
}

export function encodeGroupHeader(header: Omit<GroupHeader, 'version'>): Uint8Array {
  if (!isGroupDatagramType(header.type)) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', 'its type is unknown');
  checkLength(header.groupId, GROUP_ID_BYTES, 'group id');
  checkLength(header.instance, GROUP_INSTANCE_BYTES, 'instance');
  checkInteger(header.epoch, MAX_EPOCH, 'epoch');
  checkInteger(header.senderIdx, MAX_SENDER_IDX, 'sender index');
  checkInteger(header.seq, Number.MAX_SAFE_INTEGER, 'seq');
  checkInteger(header.timeMs, Number.MAX_SAFE_INTEGER, 'time');
  const out = new Uint8Array(GROUP_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, GROUP_DATAGRAM_VERSION);
  dv.setUint8(1, header.type);
  out.set(header.groupId, 2);
  dv.setUint32(18, header.epoch);
  dv.setUint16(22, header.senderIdx);
  out.set(header.instance, 24);
  dv.setBigUint64(32, BigInt(header.seq));
  dv.setBigUint64(40, BigInt(header.timeMs));
  return out;
}

/**
 * Parses the 48 header bytes at the start of `bytes`; SALA_E_GROUP_DATAGRAM_INVALID if unusable. The
 * byte fields are plain Uint8Array copies (Buffer#slice would return views into the datagram).
 */
export function decodeGroupHeader(bytes: Uint8Array): GroupHeader {
  if (bytes.length < GROUP_HEADER_BYTES) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', 'it is truncated');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, GROUP_HEADER_BYTES);
  const version = dv.getUint8(0);
  if (version !== GROUP_DATAGRAM_VERSION) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `its version ${version} is not supported`);
  const type = dv.getUint8(1);
  if (!isGroupDatagramType(type)) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `its type ${type} is unknown`);
  const seq = dv.getBigUint64(32);
  const timeMs = dv.getBigUint64(40);
  const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
  if (seq > maxSafe || timeMs > maxSafe) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', 'its seq or time is out of range');
  return {
    version,
    type,
    groupId: Uint8Array.from(bytes.subarray(2, 18)),
    epoch: dv.getUint32(18),
    senderIdx: dv.getUint16(22),
    instance: Uint8Array.from(bytes.subarray(24, 32)),
    seq: Number(seq),
    timeMs: Number(timeMs),
  };
}

/** k_s: the per-sender subkey (SECURITY.md §2, C4). The caller zeroes it after use. */
export function deriveSenderKey(
  groupKey: Uint8Array,
  groupId: Uint8Array,
  epoch: number,
  senderIdx: number,
  instance: Uint8Array,
): Uint8Array {
  checkLength(groupKey, AEAD_KEY_BYTES, 'group key');
  checkLength(groupId, GROUP_ID_BYTES, 'group id');
  checkLength(instance, GROUP_INSTANCE_BYTES, 'instance');
  checkInteger(epoch, MAX_EPOCH, 'epoch');
  checkInteger(senderIdx, MAX_SENDER_IDX, 'sender index');
  const input = new Uint8Array(SEND_KEY_DOMAIN.length + GROUP_ID_BYTES + 4 + 2 + GROUP_INSTANCE_BYTES);
  const dv = new DataView(input.buffer);
  let at = 0;
  input.set(SEND_KEY_DOMAIN, at);
  at += SEND_KEY_DOMAIN.length;
  input.set(groupId, at);
  at += GROUP_ID_BYTES;
  dv.setUint32(at, epoch);
  dv.setUint16(at + 4, senderIdx);
  input.set(instance, at + 6);
  return sodium().crypto_generichash(AEAD_KEY_BYTES, input, groupKey);
}

export interface SealGroupDatagramParams {
  groupKey: Uint8Array;
  groupId: Uint8Array;
  epoch: number;
  senderIdx: number;
  instance: Uint8Array;
  /** The sender's next seq for this instance; never reuse one (it is the nonce). */
  seq: number;
  /** Server time (H4). */
  timeMs: number;
  type: GroupDatagramType;
  body: Uint8Array;
  /** The sender's Ed25519 secret key (libsodium's 64-byte form). */
  signingKey: Uint8Array;
}

/** Builds one datagram of at most MAX_GROUP_DATAGRAM_BYTES; throws SALA_E_GROUP_DATAGRAM_INVALID for bad parameters. */
export function sealGroupDatagram(params: SealGroupDatagramParams): Uint8Array {
  const { body } = params;
  if (body.length > MAX_GROUP_BODY_BYTES) {
    throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `its body of ${body.length} bytes is over ${MAX_GROUP_BODY_BYTES}`);
  }
  checkLength(params.signingKey, 64, 'signing key');
  const header = encodeGroupHeader(params);
  const signature = signDetached(params.signingKey, SIGN_DOMAIN, Buffer.concat([header, body]));
  const key = deriveSenderKey(params.groupKey, params.groupId, params.epoch, params.senderIdx, params.instance);
  try {
    const datagram = sodiumAead.seal(key, noiseNonce(params.seq), header, [body, signature], GROUP_HEADER_BYTES);
    datagram.set(header, 0);
    return datagram;
  } finally {
    sodium().memzero(key);
  }
}

/** Which sender a datagram claims to be from (not yet authenticated when the rate limiter sees it). */
export interface GroupSenderRef {
  groupId: Uint8Array;
  epoch: number;
  senderIdx: number;
  instance: Uint8Array;
}

/**
 * Per-sender rate limit. hasToken() runs before the AEAD and spends nothing; take() runs once the
 * AEAD has passed, just before the Ed25519 verify it is there to bound. So only holders of the group
 * key can drain a member's bucket: an outsider spoofing a member's header cannot silence it.
 */
export interface GroupRateLimiter {
  hasToken(sender: GroupSenderRef, nowMs: number): boolean;
  take(sender: GroupSenderRef, nowMs: number): void;
}

export interface GroupRateBucketsOptions {
  /** Datagrams a sender may send in a burst after a quiet period. */
  burst?: number;
  /** Sustained datagrams per second per sender. */
  perSecond?: number;
  /** Buckets held; the least recently used is forgotten first (which only loosens its limit). */
  maxSenders?: number;
}

/** A 16-fragment message 16 times over, then 100 datagrams/s: far above people typing, far below what verifying costs. */
export const GROUP_RATE_DEFAULTS = Object.freeze({ burst: 256, perSecond: 100, maxSenders: 1024 });

/**
 * The built-in limiter: a token bucket per (groupId, epoch, senderIdx). Not per instance, because
 * the instance is chosen by the sender: a member drawing a new one per datagram would get a fresh
 * bucket each time. Buckets are created only by take(), i.e. after the AEAD passed.
 */
export class GroupRateBuckets implements GroupRateLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxSenders: number;
  readonly #buckets = new Map<string, { tokens: number; updatedMs: number }>();

  constructor(options: GroupRateBucketsOptions = {}) {
    const o = { ...GROUP_RATE_DEFAULTS, ...options };
    if (!Number.isFinite(o.burst) || o.burst < 1) throw new ConfigInvalidError('burst', 'must be at least 1');
    if (!Number.isFinite(o.perSecond) || o.perSecond <= 0) throw new ConfigInvalidError('perSecond', 'must be a positive number');
    if (!Number.isSafeInteger(o.maxSenders) || o.maxSenders < 1) throw new ConfigInvalidError('maxSenders', 'must be a positive integer');
    this.#burst = o.burst;
    this.#perMs = o.perSecond / 1000;
    this.#maxSenders = o.maxSenders;
  }

  get size(): number {
    return this.#buckets.size;
  }

  hasToken(sender: GroupSenderRef, nowMs: number): boolean {
    return this.#tokens(senderKey(sender), nowMs) >= 1;
  }

  take(sender: GroupSenderRef, nowMs: number): void {
    const key = senderKey(sender);
    const tokens = this.#tokens(key, nowMs);
    this.#buckets.delete(key);
    if (this.#buckets.size >= this.#maxSenders) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    this.#buckets.set(key, { tokens: Math.max(0, tokens - 1), updatedMs: nowMs });
  }

  /** A clock stepping back refills nothing. */
  #tokens(key: string, nowMs: number): number {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) return this.#burst;
    return Math.min(this.#burst, bucket.tokens + Math.max(0, nowMs - bucket.updatedMs) * this.#perMs);
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function senderKey(sender: GroupSenderRef): string {
  return `${hex(sender.groupId)}:${sender.epoch}:${sender.senderIdx}`;
}

export type GroupRejectCode =
  | 'SALA_E_GROUP_DATAGRAM_INVALID'
  | 'SALA_E_GROUP_NOT_MEMBER'
  | 'SALA_E_GROUP_KEY_UNKNOWN'
  | 'SALA_E_GROUP_REPLAY'
  | 'SALA_E_GROUP_RATE_LIMIT'
  | 'SALA_E_GROUP_AUTH_FAILED';

const REJECT_CODES: readonly GroupRejectCode[] = [
  'SALA_E_GROUP_DATAGRAM_INVALID',
  'SALA_E_GROUP_NOT_MEMBER',
  'SALA_E_GROUP_KEY_UNKNOWN',
  'SALA_E_GROUP_REPLAY',
  'SALA_E_GROUP_RATE_LIMIT',
  'SALA_E_GROUP_AUTH_FAILED',
];

/** Counters for tests, warnings and the activity log; `signatureVerifies` is SECURITY.md test 12's witness. */
export interface GroupReceiveStats {
  received: number;
  accepted: number;
  rejected: Record<GroupRejectCode, number>;
  aeadOpens: number;
  signatureVerifies: number;
}

export type GroupSignatureVerifier = (publicKey: Uint8Array, domain: string, message: Uint8Array, signature: Uint8Array) => boolean;

export interface GroupReceiveStateOptions extends SenderWindowsOptions {
  /** Defaults to new GroupRateBuckets(). */
  rateLimiter?: GroupRateLimiter;
  /** Defaults to verifyDetached (libsodium Ed25519); tests may wrap it. */
  verify?: GroupSignatureVerifier;
}

/** What a receiver keeps between datagrams: replay windows, rate buckets and counters. One per receiving socket. */
export class GroupReceiveState {
  readonly windows: SenderWindows;
  readonly rateLimiter: GroupRateLimiter;
  readonly verify: GroupSignatureVerifier;
  readonly stats: GroupReceiveStats = {
    received: 0,
    accepted: 0,
    rejected: Object.fromEntries(REJECT_CODES.map((code) => [code, 0])) as Record<GroupRejectCode, number>,
    aeadOpens: 0,
    signatureVerifies: 0,
  };

  constructor(options: GroupReceiveStateOptions = {}) {
    const windowOptions: SenderWindowsOptions = {};
    if (options.maxSenders !== undefined) windowOptions.maxSenders = options.maxSenders;
    if (options.maxInstancesPerSender !== undefined) windowOptions.maxInstancesPerSender = options.maxInstancesPerSender;
    this.windows = new SenderWindows(windowOptions);
    this.rateLimiter = options.rateLimiter ?? new GroupRateBuckets();
    this.verify = options.verify ?? verifyDetached;
  }
}

export interface GroupOpenContext {
  /** True for the groups this peer is in; other groups' datagrams are SALA_E_GROUP_DATAGRAM_INVALID. */
  isKnownGroup(groupId: Uint8Array): boolean;
  /**
   * The key of `epoch` when it is the group's current epoch, or the previous one still inside its
   * overlap after a rotation; undefined otherwise (SALA_E_GROUP_KEY_UNKNOWN).
   */
  groupKey(groupId: Uint8Array, epoch: number): Uint8Array | undefined;
  /** The Ed25519 public key of the member at `senderIdx` in `epoch`; undefined for non-members (SALA_E_GROUP_NOT_MEMBER). */
  memberSigningKey(epoch: number, senderIdx: number, groupId: Uint8Array): Uint8Array | undefined;
  /** Server time (H4: the offset learned at login plus the monotonic clock). */
  nowMs(): number;
  state: GroupReceiveState;
}

/**
 * Authenticates one received datagram and returns its header and body, or throws a SalaError with
 * one of the GroupRejectCode codes (a recoverable condition: report it as a `warning`). The
 * AEAD and signature failures share one code and message, so a sender learns nothing about which
 * check failed.
 */
export function openGroupDatagram(bytes: Uint8Array, ctx: GroupOpenContext): OpenedGroupDatagram {
  const { stats } = ctx.state;
  stats.received += 1;
  try {
    const opened = openChecked(bytes, ctx);
    stats.accepted += 1;
    return opened;
  } catch (err) {
    if (err instanceof SalaError && (REJECT_CODES as readonly string[]).includes(err.code)) {
      stats.rejected[err.code as GroupRejectCode] += 1;
    }
    throw err;
  }
}

function openChecked(bytes: Uint8Array, ctx: GroupOpenContext): OpenedGroupDatagram {
  const { state } = ctx;
  // 1. Header: nothing here touches a key.
  if (bytes.length < MIN_GROUP_DATAGRAM_BYTES) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', 'it is truncated');
  if (bytes.length > MAX_GROUP_DATAGRAM_BYTES) {
    throw fail('SALA_E_GROUP_DATAGRAM_INVALID', `it is over ${MAX_GROUP_DATAGRAM_BYTES} bytes`);
  }
  const header = decodeGroupHeader(bytes);
  if (!ctx.isKnownGroup(header.groupId)) throw fail('SALA_E_GROUP_DATAGRAM_INVALID', 'it is for a group this peer is not in');
  const groupKey = ctx.groupKey(header.groupId, header.epoch);
  if (groupKey === undefined) throw fail('SALA_E_GROUP_KEY_UNKNOWN', `its key epoch ${header.epoch} is not current`);
  const signingKey = ctx.memberSigningKey(header.epoch, header.senderIdx, header.groupId);
  if (signingKey === undefined) {
    throw fail('SALA_E_GROUP_NOT_MEMBER', `sender ${header.senderIdx} is not a member in epoch ${header.epoch}`);
  }

  // 2. Rate, 3. replay window, 4. time: still no crypto.
  const nowMs = ctx.nowMs();
  if (!state.rateLimiter.hasToken(header, nowMs)) {
    throw fail('SALA_E_GROUP_RATE_LIMIT', `sender ${header.senderIdx} is over its datagram rate`);
  }
  const windowSender = senderKey(header);
  const windowInstance = hex(header.instance);
  const verdict = state.windows.check(windowSender, windowInstance, header.seq);
  if (verdict !== 'fresh') throw fail('SALA_E_GROUP_REPLAY', verdict === 'duplicate' ? 'it was already received' : 'it is too old');
  if (Math.abs(header.timeMs - nowMs) > GROUP_CLOCK_SKEW_MS) {
    throw fail('SALA_E_GROUP_REPLAY', 'its time is more than 30 s from server time');
  }

  // 5. AEAD under the sender's subkey: fails for anyone without the group key.
  const key = deriveSenderKey(groupKey, header.groupId, header.epoch, header.senderIdx, header.instance);
  let plaintext: Uint8Array;
  try {
    state.stats.aeadOpens += 1;
    plaintext = sodiumAead.open(key, noiseNonce(header.seq), bytes.subarray(0, GROUP_HEADER_BYTES), bytes.subarray(GROUP_HEADER_BYTES));
  } catch (err) {
    throw new SalaError('SALA_E_GROUP_AUTH_FAILED', 'A group datagram was dropped: it failed authentication.', { cause: err });
  } finally {
    sodium().memzero(key);
  }
  state.rateLimiter.take(header, nowMs);

  // 6. Ed25519 over header ‖ body, against the member's device key.
  const bodyBytes = plaintext.length - SIGNATURE_BYTES;
  const body = plaintext.subarray(0, bodyBytes);
  state.stats.signatureVerifies += 1;
  const signed = new Uint8Array(GROUP_HEADER_BYTES + bodyBytes);
  signed.set(bytes.subarray(0, GROUP_HEADER_BYTES), 0);
  signed.set(body, GROUP_HEADER_BYTES);
  if (!state.verify(signingKey, SIGN_DOMAIN, signed, plaintext.subarray(bodyBytes))) {
    throw new SalaError('SALA_E_GROUP_AUTH_FAILED', 'A group datagram was dropped: it failed authentication.');
  }

  state.windows.mark(windowSender, windowInstance, header.seq);
  return { header, body };
}
