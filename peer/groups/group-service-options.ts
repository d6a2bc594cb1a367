import { ConfigInvalidError, GROUP_RATE_DEFAULTS, type Logger, type MessageOf, type SalaError } from '../../common/index.js';

/** What the group layer needs of a multicast socket (MulticastSocket has it; tests wrap one to lose datagrams). */
export interface MulticastSocketLike {
  join(address: string): void;
  leave(address: string): void;
  send(bytes: Uint8Array, address: string): void;
  close(): Promise<void>;
  on(event: 'datagram', listener: (bytes: Buffer) => void): unknown;
  on(event: 'warning', listener: (error: SalaError) => void): unknown;
}

/** The part of RendezvousClient the group layer uses. */
export interface GroupRendezvous {
  joinGroup(group: string): void;
  leaveGroup(group: string): void;
  on(event: 'group.state', listener: (state: MessageOf<'group.state'>) => void): unknown;
  on(event: 'group.left', listener: (group: string, error: SalaError | undefined) => void): unknown;
  off(event: 'group.state', listener: (state: MessageOf<'group.state'>) => void): unknown;
  off(event: 'group.left', listener: (group: string, error: SalaError | undefined) => void): unknown;
}

/** A member a datagram should reach over a direct link (the multicast fallback). */
export interface LinkTarget {
  user: string;
  sessionId: string;
  senderIdx: number;
}

export interface GroupTuning {
  /** A gap is asked for (NACK) after this long, so reordered datagrams do not cause NACKs. */
  nackDelayMs: number;
  /** A seq still missing is asked for again after this long (ours or another member's NACK). */
  nackRetryMs: number;
  /** A seq missing this long is given up: later messages are delivered, with a `warning`. */
  repairTimeoutMs: number;
  /** How long a superseded key epoch is still accepted after a rotation. */
  overlapMs: number;
  /** DATA datagrams a sender keeps per group to answer NACKs... */
  repairHistoryPerGroup: number;
  /** ...and their fragment bytes at most. */
  repairHistoryBytesPerGroup: number;
  /** One seq is repaired at most once per this interval, however many members ask. */
  repairIntervalMs: number;
  /** Repairs a sender sends per group: sustained rate and burst. */
  repairsPerSecond: number;
  repairBurst: number;
  /**
   * DATA datagrams a sender sends per group (send() refuses beyond with SALA_E_RATE_LIMIT). With
   * repairs and NACKs this stays under what receivers accept from one sender (receivePerSecond,
   * receiveBurst); beyond that they would drop datagrams and NACK them.
   */
  sendPerSecond: number;
  sendBurst: number;
  /**
   * Datagrams we accept from one member (per group and key epoch, all its datagrams together)
   * before the Ed25519 verify, which the limit bounds: sustained rate and burst. Every member must
   * accept at least what the others send (sendPerSecond plus their repairs and control datagrams).
   */
  receivePerSecond: number;
  receiveBurst: number;
  /** NACK datagrams a receiver sends per group: sustained rate and burst. */
  nacksPerSecond: number;
  nackBurst: number;
  /**
   * A sender announces the last seq of its DATA stream this long after it last sent there,
   * so receivers notice a lost last datagram (nothing after it would show the gap).
   */
  tailAnnounceDelayMs: number;
  /** The announcement is repeated (1 s, 2 s, 4 s…) at most this far apart while its key epoch lasts. */
  tailRepeatMaxMs: number;
  /** The multicast self-test at join waits this long for our own probe to come back. */
  selfTestTimeoutMs: number;
  /** Without multicast, a join waits at most this long for its probe to be on the links to every member. */
  linkProbeTimeoutMs: number;
  /** After a membership change each member multicasts a probe this long later (plus up to as much, random)... */
  reachabilityProbeDelayMs: number;
  /** ...and members not heard by multicast this long after the change get a probe over a link. */
  reachabilityCheckMs: number;
  /** `warning` events per window, all causes together; the rest are counted and summarised. */
  maxWarnings: number;
  warningWindowMs: number;
  /** Seqs of one sender waited for at once; older ones are given up beyond it. */
  maxGapSeqs: number;
  /** Datagrams of a key epoch newer than ours kept until its group.state arrives, and for how long. */
  futureDatagramsPerGroup: number;
  futureDatagramTtlMs: number;
  /** Sender instances (process runs) tracked per member; the least recently active goes first. */
  maxInstancesPerSender: number;
}

export const GROUP_TUNING_DEFAULTS: Readonly<GroupTuning> = Object.freeze({
  nackDelayMs: 30,
  nackRetryMs: 250,
  repairTimeoutMs: 2_000,
  overlapMs: 5_000,
  repairHistoryPerGroup: 1_024,
  repairHistoryBytesPerGroup: 1_024 * 1_024,
  repairIntervalMs: 200,
  repairsPerSecond: 30,
  repairBurst: 64,
  sendPerSecond: 50,
  sendBurst: 128,
  receivePerSecond: GROUP_RATE_DEFAULTS.perSecond,
  receiveBurst: GROUP_RATE_DEFAULTS.burst,
  nacksPerSecond: 10,
  nackBurst: 10,
  tailAnnounceDelayMs: 100,
  tailRepeatMaxMs: 30_000,
  selfTestTimeoutMs: 300,
  linkProbeTimeoutMs: 5_000,
  reachabilityProbeDelayMs: 300,
  reachabilityCheckMs: 2_000,
  maxWarnings: 10,
  warningWindowMs: 60_000,
  maxGapSeqs: 512,
  futureDatagramsPerGroup: 64,
  futureDatagramTtlMs: 2_000,
  maxInstancesPerSender: 4,
});

export interface GroupServiceOptions extends Partial<GroupTuning> {
  /**
   * Who we are. `sessionId` is read at every group.state (not copied), so a getter can follow a new
   * session after the server restarted. `signingKey` is the device's Ed25519 secret key
   * (libsodium's 64-byte form); its public half is our `sigPk` in the member lists.
   */
  me: { readonly user: string; readonly sessionId: string; readonly signingKey: Uint8Array };
  rendezvous: GroupRendezvous;
  /** Opens the one multicast socket, at the group port of the first group.state (MulticastSocket.open in production). */
  openSocket: (port: number) => Promise<MulticastSocketLike>;
  /** Server time (SECURITY.md H4): datagram times are signed and judged by it. */
  serverNow: () => number;
  /**
   * Sends a datagram to these members over direct links: used for every member when our multicast
   * self-test failed, and for members known to be reachable only that way. The Peer calls
   * receiveFromLink() with what arrives. Without it, a group whose multicast fails is silent.
   * It may return a promise that settles when the datagram is on its way to every member (or they
   * could not be reached): a join without multicast waits for its probe that way.
   */
  sendOverLinks?: (group: string, datagram: Uint8Array, members: readonly LinkTarget[]) => void | Promise<void>;
  logger?: Logger;
}

const MAY_BE_ZERO: ReadonlySet<keyof GroupTuning> = new Set(['nackDelayMs']);
const INTEGERS: ReadonlySet<keyof GroupTuning> = new Set([
  'repairHistoryPerGroup',
  'repairHistoryBytesPerGroup',
  'maxWarnings',
  'maxGapSeqs',
  'futureDatagramsPerGroup',
  'maxInstancesPerSender',
]);

/** Fills in defaults and checks every option; a bad one is SALA_E_CONFIG_INVALID naming it. */
export function resolveGroupTuning(options: Partial<GroupTuning>): GroupTuning {
  const tuning: GroupTuning = { ...GROUP_TUNING_DEFAULTS };
  for (const name of Object.keys(GROUP_TUNING_DEFAULTS) as (keyof GroupTuning)[]) {
    const value = options[name];
    if (value === undefined) continue;
    const min = MAY_BE_ZERO.has(name) ? 0 : Number.MIN_VALUE;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new ConfigInvalidError(name, MAY_BE_ZERO.has(name) ? 'must be a number of at least 0' : 'must be a positive number');
    }
    if (INTEGERS.has(name) && !Number.isSafeInteger(value)) throw new ConfigInvalidError(name, 'must be a positive integer');
    tuning[name] = value;
  }
  if (tuning.repairBurst < 1) throw new ConfigInvalidError('repairBurst', 'must be at least 1');
  if (tuning.nackBurst < 1) throw new ConfigInvalidError('nackBurst', 'must be at least 1');
  if (tuning.receiveBurst < 1) throw new ConfigInvalidError('receiveBurst', 'must be at least 1');
  if (tuning.sendBurst < 16) throw new ConfigInvalidError('sendBurst', 'must be at least 16 (one 8 KiB message)');
  return tuning;
}

export function validateGroupServiceOptions(options: GroupServiceOptions): GroupTuning {
  const { me } = options;
  if (typeof me?.user !== 'string' || me.user.length === 0) throw new ConfigInvalidError('me.user', 'must be our user name');
  if (!(me.signingKey instanceof Uint8Array) || me.signingKey.length !== 64) {
    throw new ConfigInvalidError('me.signingKey', 'must be a 64-byte Ed25519 secret key');
  }
  if (typeof options.openSocket !== 'function') throw new ConfigInvalidError('openSocket', 'must be a function');
  if (typeof options.serverNow !== 'function') throw new ConfigInvalidError('serverNow', 'must be a function');
  if (options.sendOverLinks !== undefined && typeof options.sendOverLinks !== 'function') {
    throw new ConfigInvalidError('sendOverLinks', 'must be a function');
  }
  return resolveGroupTuning(options);
}
