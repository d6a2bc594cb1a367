import { sodium, type MessageOf } from '../../common/index.js';

export type GroupState = MessageOf<'group.state'>;

export interface GroupMember {
  readonly senderIdx: number;
  readonly user: string;
  readonly sessionId: string;
  readonly sigPk: Uint8Array;
}

interface Epoch {
  readonly epoch: number;
  readonly key: Uint8Array;
  readonly members: ReadonlyMap<number, GroupMember>;
  /** Monotonic ms after which a superseded epoch's key is no longer accepted. */
  expiresAtMs: number;
}

/** Superseded epochs kept at once (each only for overlapMs): a burst of joins rotates several times a second. */
export const MAX_OVERLAPPING_EPOCHS = 8;

/**
 * One group's keys and member lists by key epoch (SECURITY.md H3): the current epoch, and the
 * epochs it superseded less than `overlapMs` ago, so datagrams sealed just before a rotation (or
 * repaired after it, see GroupSender) still open. A superseded key is zeroed when its overlap ends.
 * Times are monotonic ms passed in by the caller.
 */
export class GroupEpochs {
  readonly #overlapMs: number;
  #current: Epoch;
  /** Newest first. */
  #previous: Epoch[] = [];

  constructor(state: GroupState, overlapMs: number) {
    this.#overlapMs = overlapMs;
    this.#current = toEpoch(state);
  }

  get epoch(): number {
    return this.#current.epoch;
  }

  get currentKey(): Uint8Array {
    return this.#current.key;
  }

  get members(): readonly GroupMember[] {
    return [...this.#current.members.values()];
  }

  /** Takes a state of the same group incarnation: `rotated` for a newer epoch, `stale` for an older one. */
  apply(state: GroupState, nowMs: number): 'rotated' | 'same' | 'stale' {
    if (state.epoch < this.#current.epoch) return 'stale';
    if (state.epoch === this.#current.epoch) {
      // The server repeats a state when a joined session asks again; the key is the same.
      const key = this.#current.key;
      this.#current = { ...toEpoch(state), expiresAtMs: Number.POSITIVE_INFINITY };
      sodium().memzero(key);
      return 'same';
    }
    this.#current.expiresAtMs = nowMs + this.#overlapMs;
    this.#previous.unshift(this.#current);
    for (const dropped of this.#previous.splice(MAX_OVERLAPPING_EPOCHS)) sodium().memzero(dropped.key);
    this.#current = toEpoch(state);
    return 'rotated';
  }

  /** The key of `epoch` if it is current or inside its overlap. */
  key(epoch: number, nowMs: number): Uint8Array | undefined {
    return this.#find(epoch, nowMs)?.key;
  }

  member(epoch: number, senderIdx: number, nowMs: number): GroupMember | undefined {
    return this.#find(epoch, nowMs)?.members.get(senderIdx);
  }

  isHeld(epoch: number, nowMs: number): boolean {
    return this.#find(epoch, nowMs) !== undefined;
  }

  /** Sender indexes of the current and still-overlapping epochs. */
  heldSenderIndexes(nowMs: number): Set<number> {
    this.expire(nowMs);
    const held = new Set(this.#current.members.keys());
    for (const epoch of this.#previous) for (const idx of epoch.members.keys()) held.add(idx);
    return held;
  }

  /** Zeroes and forgets superseded keys whose overlap ended; returns when the next one ends. */
  expire(nowMs: number): number | undefined {
    while (this.#previous.length > 0) {
      const oldest = this.#previous.at(-1);
      if (oldest === undefined || oldest.expiresAtMs > nowMs) break;
      this.#previous.pop();
      sodium().memzero(oldest.key);
    }
    return this.#previous.at(-1)?.expiresAtMs;
  }

  /** Zeroes every key held. */
  destroy(): void {
    sodium().memzero(this.#current.key);
    for (const epoch of this.#previous) sodium().memzero(epoch.key);
    this.#previous = [];
  }

  #find(epoch: number, nowMs: number): Epoch | undefined {
    if (epoch === this.#current.epoch) return this.#current;
    const found = this.#previous.find((e) => e.epoch === epoch);
    return found !== undefined && found.expiresAtMs > nowMs ? found : undefined;
  }
}

/** Copies the key and member keys out of the message: its buffers belong to the decoder. */
function toEpoch(state: GroupState): Epoch {
  const members = new Map<number, GroupMember>();
  for (const m of state.members) {
    members.set(m.senderIdx, { senderIdx: m.senderIdx, user: m.user, sessionId: m.sessionId, sigPk: Uint8Array.from(m.sigPk) });
  }
  return { epoch: state.epoch, key: Uint8Array.from(state.key), members, expiresAtMs: Number.POSITIVE_INFINITY };
}
