import { createHash, randomBytes } from 'node:crypto';
import { SalaError, type WireMessage } from '../common/index.js';

/** Organisation-local multicast scope (RFC 2365): 239.192.0.0/14, never routed off the site. */
const MULTICAST_BASE = [239, 192, 0, 0] as const;
const MULTICAST_HOST_BITS = 18;
/** One UDP port for every group (the address tells groups apart; the group id in each datagram too). */
export const GROUP_PORT = 7422;
/** Where the server saves its groups, in its data dir. */
export const GROUPS_FILE = 'groups.json';

export interface GroupLimits {
  groupsPerSession: number;
  membersPerGroup: number;
  groups: number;
}

export const GROUP_LIMITS: Readonly<GroupLimits> = Object.freeze({
  /** Groups one session may be in. */
  groupsPerSession: 16,
  /** Members of one group (sender indexes are 16-bit; the datagram layer assumes few hundred). */
  membersPerGroup: 256,
  /** Groups on the server at once. */
  groups: 1_024,
});

/** A group as saved in the server's data dir (groups.json), so a restart keeps groups and keys. */
export interface SavedGroup {
  name: string;
  groupId: string;
  epoch: number;
  key: string;
  nextSenderIdx: number;
  members: { sessionId: string; user: string; sigPk: string; senderIdx: number }[];
}

/** Where the registry saves its groups; a member gets a key only once it is saved. */
export interface GroupStorage {
  save(groups: SavedGroup[]): Promise<void>;
  /** A save failed: the key still goes out (members must not wait forever), and the failure is logged. */
  onError(err: unknown): void;
}

export interface GroupMemberInput {
  sessionId: string;
  user: string;
  sigPk: Uint8Array;
}

interface Member extends GroupMemberInput {
  senderIdx: number;
}

interface Group {
  readonly name: string;
  readonly groupId: Buffer;
  readonly address: string;
  epoch: number;
  key: Buffer;
  readonly members: Map<string, Member>;
  nextSenderIdx: number;
}

/**
 * The server's groups: membership, a multicast address per group, and the group key, which only
 * members receive (inside their secure channel) and which changes — a new epoch — on every join and
 * leave, so a member who left cannot read what is sent after (SECURITY.md H3). `send` delivers a
 * message to one session's connection (dropped when it has none).
 *
 * With `storage`, every change is saved before any member hears of it, and restore() brings the
 * groups back after a restart — same group id, epoch and key — for the sessions that come back.
 * Without that, a restart would make every group anew, and while peers reconnect one by one (seconds
 * apart, with backoff) those already in the new group and those still in the old one could not
 * read each other. Saving before sending means the saved epoch is never behind what members hold,
 * so an epoch number is never reused with another key.
 */
export class GroupRegistry {
  readonly #groups = new Map<string, Group>();
  readonly #send: (sessionId: string, message: WireMessage) => void;
  readonly #limits: GroupLimits;
  readonly #storage: GroupStorage | undefined;
  /** Saves in order; each change's states go out after its save. */
  #saving: Promise<void> = Promise.resolve();
  /** A save is queued and has not started: later changes ride along with it. */
  #isSaveQueued = false;

  constructor(send: (sessionId: string, message: WireMessage) => void, limits: Partial<GroupLimits> = {}, storage?: GroupStorage) {
    this.#send = send;
    this.#limits = { ...GROUP_LIMITS, ...limits };
    this.#storage = storage;
  }

  /**
   * The groups saved before a restart, keeping only members whose sessions came back (`isLive`);
   * a group that lost members gets a new key, as if they had left. Call before anyone connects.
   */
  restore(saved: readonly SavedGroup[], isLive: (sessionId: string) => boolean): void {
    for (const entry of saved) {
      const members = new Map<string, Member>();
      for (const m of entry.members) {
        if (isLive(m.sessionId)) members.set(m.sessionId, { sessionId: m.sessionId, user: m.user, sigPk: Buffer.from(m.sigPk, 'hex'), senderIdx: m.senderIdx });
      }
      if (members.size === 0 || this.#groups.has(entry.name) || this.#groups.size >= this.#limits.groups) continue;
      const group: Group = {
        name: entry.name,
        groupId: Buffer.from(entry.groupId, 'hex'),
        address: multicastAddressFor(entry.name),
        epoch: entry.epoch,
        key: Buffer.from(entry.key, 'base64'),
        members,
        nextSenderIdx: entry.nextSenderIdx,
      };
      this.#groups.set(group.name, group);
      if (members.size < entry.members.length) this.#rotate(group);
    }
    this.#save();
  }

  /** Resolves when every change so far is saved and its states sent. */
  idle(): Promise<void> {
    return this.#saving;
  }

  /** Adds the session to the group (created on first join), rotates its key and tells every member. */
  join(name: string, member: GroupMemberInput): void {
    let group = this.#groups.get(name);
    if (group?.members.has(member.sessionId) === true) {
      // Joined already (a resumed peer asks again): the current state, once it is saved.
      const joined = group;
      this.#afterSave(() => {
        if (this.#groups.get(name) === joined && joined.members.has(member.sessionId)) this.#sendState(joined, member.sessionId);
      });
      return;
    }
    if (this.groupsOf(member.sessionId).length >= this.#limits.groupsPerSession) {
      throw new SalaError('SALA_E_RATE_LIMIT', `A session may be in at most ${this.#limits.groupsPerSession} groups; leave one first.`);
    }
    if (group === undefined) {
      if (this.#groups.size >= this.#limits.groups) throw new SalaError('SALA_E_BUSY', 'The server has too many groups; try again later.');
      group = newGroup(name);
      this.#groups.set(name, group);
    }
    if (group.members.size >= this.#limits.membersPerGroup) {
      throw new SalaError('SALA_E_RATE_LIMIT', `The group ${name} is full (${this.#limits.membersPerGroup} members).`);
    }
    group.members.set(member.sessionId, { ...member, senderIdx: group.nextSenderIdx++ });
    this.#rotate(group);
  }

  /** Removes the session from the group; the others get a new key. Unknown membership is ignored. */
  leave(name: string, sessionId: string): boolean {
    const group = this.#groups.get(name);
    if (group === undefined || !group.members.delete(sessionId)) return false;
    this.#send(sessionId, { type: 'group.left', group: name });
    if (group.members.size === 0) this.#delete(name);
    else this.#rotate(group);
    return true;
  }

  /** A session ended (logout, kick, expiry): out of every group, each rotated. */
  removeSession(sessionId: string): void {
    for (const name of this.groupsOf(sessionId)) {
      const group = this.#groups.get(name);
      if (group === undefined) continue;
      group.members.delete(sessionId);
      if (group.members.size === 0) this.#delete(name);
      else this.#rotate(group);
    }
  }

  groupsOf(sessionId: string): string[] {
    return [...this.#groups.values()].filter((g) => g.members.has(sessionId)).map((g) => g.name);
  }

  /** For the admin view and tests: each group's name, epoch and members (no keys). */
  list(): { name: string; address: string; epoch: number; members: { user: string; sessionId: string; senderIdx: number }[] }[] {
    return [...this.#groups.values()].map((g) => ({
      name: g.name,
      address: g.address,
      epoch: g.epoch,
      members: [...g.members.values()].map(({ user, sessionId, senderIdx }) => ({ user, sessionId, senderIdx })),
    }));
  }

  #rotate(group: Group): void {
    group.epoch += 1;
    group.key = randomBytes(32);
    const { epoch } = group;
    const sendAll = (): void => {
      // A later change of the same group sends its own, newer state.
      if (this.#groups.get(group.name) !== group || group.epoch !== epoch) return;
      for (const sessionId of group.members.keys()) this.#sendState(group, sessionId);
    };
    this.#save();
    this.#afterSave(sendAll);
  }

  /** Runs `action` once everything changed so far is saved (at once without storage). */
  #afterSave(action: () => void): void {
    const storage = this.#storage;
    if (storage === undefined) action();
    else this.#saving = this.#saving.then(action).catch((err: unknown) => storage.onError(err));
  }

  #delete(name: string): void {
    this.#groups.delete(name);
    this.#save();
  }

  /**
   * Queues a save of every group, taken when the save starts; changes made before it starts ride
   * along (a class joining at once costs a few writes, not one fsync per join).
   */
  #save(): void {
    const storage = this.#storage;
    if (storage === undefined || this.#isSaveQueued) return;
    this.#isSaveQueued = true;
    this.#saving = this.#saving
      .then(() => {
        this.#isSaveQueued = false;
        return storage.save([...this.#groups.values()].map(saveGroup));
      })
      .catch((err: unknown) => storage.onError(err));
  }

  #sendState(group: Group, sessionId: string): void {
    this.#send(sessionId, {
      type: 'group.state',
      group: group.name,
      groupId: group.groupId,
      address: group.address,
      port: GROUP_PORT,
      epoch: group.epoch,
      key: group.key,
      members: [...group.members.values()].map(({ senderIdx, user, sessionId: sid, sigPk }) => ({ senderIdx, user, sessionId: sid, sigPk })),
    });
  }
}

function saveGroup(group: Group): SavedGroup {
  return {
    name: group.name,
    groupId: group.groupId.toString('hex'),
    epoch: group.epoch,
    key: group.key.toString('base64'),
    nextSenderIdx: group.nextSenderIdx,
    members: [...group.members.values()].map((m) => ({ sessionId: m.sessionId, user: m.user, sigPk: Buffer.from(m.sigPk).toString('hex'), senderIdx: m.senderIdx })),
  };
}

/** One saved group, checked field by field (the file is ours, but a damaged one must not crash the start). */
export function parseSavedGroup(value: unknown): SavedGroup {
  const fail = (what: string): never => {
    throw new Error(`a saved group has a bad ${what}`);
  };
  if (typeof value !== 'object' || value === null) return fail('entry');
  const v = value as Record<string, unknown>;
  const isHex = (x: unknown, bytes: number): x is string => typeof x === 'string' && x.length === bytes * 2 && /^[0-9a-f]*$/u.test(x);
  const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= 0xffff;
  if (typeof v['name'] !== 'string' || v['name'].length === 0 || v['name'].length > 32) fail('name');
  if (!isHex(v['groupId'], 16)) fail('groupId');
  if (typeof v['epoch'] !== 'number' || !Number.isSafeInteger(v['epoch']) || v['epoch'] < 0 || v['epoch'] > 0xffffffff) fail('epoch');
  if (typeof v['key'] !== 'string' || Buffer.from(v['key'], 'base64').length !== 32) fail('key');
  if (typeof v['nextSenderIdx'] !== 'number' || !Number.isSafeInteger(v['nextSenderIdx']) || v['nextSenderIdx'] < 0 || v['nextSenderIdx'] > 0x10000) fail('nextSenderIdx');
  if (!Array.isArray(v['members'])) return fail('member list');
  const members = (v['members'] as unknown[]).map((m) => {
    if (typeof m !== 'object' || m === null) return fail('member');
    const r = m as Record<string, unknown>;
    if (typeof r['sessionId'] !== 'string' || typeof r['user'] !== 'string' || !isHex(r['sigPk'], 32) || !isIndex(r['senderIdx'])) return fail('member');
    return { sessionId: r['sessionId'], user: r['user'], sigPk: r['sigPk'], senderIdx: r['senderIdx'] };
  });
  return {
    name: v['name'] as string,
    groupId: v['groupId'] as string,
    epoch: v['epoch'] as number,
    key: v['key'] as string,
    nextSenderIdx: v['nextSenderIdx'] as number,
    members,
  };
}

function newGroup(name: string): Group {
  // A random id per incarnation of the group: datagrams of an earlier one (before a restart) never match.
  const groupId = randomBytes(16);
  return { name, groupId, address: multicastAddressFor(name), epoch: 0, key: randomBytes(32), members: new Map(), nextSenderIdx: 0 };
}

/** A stable address per group name inside 239.192.0.0/14 (collisions are harmless: ids differ). */
export function multicastAddressFor(name: string): string {
  const digest = createHash('sha256').update(`sala/v1/group-address\0${name}`).digest();
  const hostPart = digest.readUInt32BE(0) & ((1 << MULTICAST_HOST_BITS) - 1);
  const base = (MULTICAST_BASE[0] << 24) | (MULTICAST_BASE[1] << 16);
  const value = (base | hostPart) >>> 0;
  const address = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  // Avoid .0 and .255 host octets, which some stacks treat specially.
  if (address[3] === 0 || address[3] === 255) address[3] = 1;
  return address.join('.');
}
