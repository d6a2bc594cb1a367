import { createHash, randomBytes } from 'node:crypto';
import { SalaError, type WireMessage } from '../common/index.js';

/** Organisation-local multicast scope (RFC 2365): 239.192.0.0/14, never routed off the site. */
const MULTICAST_BASE = [239, 192, 0, 0] as const;
const MULTICAST_HOST_BITS = 18;
/** One UDP port for every group (the address tells groups apart; the group id in each datagram too). */
export const GROUP_PORT = 7422;

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
 * leave, so a member who left cannot read what is sent after (SECURITY.md H3). Groups live in
 * memory: after a server restart the epoch changes anyway, and members join again when they resume.
 * `send` delivers a message to one session's connection (dropped when it has none).
 */
export class GroupRegistry {
  readonly #groups = new Map<string, Group>();
  readonly #send: (sessionId: string, message: WireMessage) => void;
  readonly #limits: GroupLimits;

  constructor(send: (sessionId: string, message: WireMessage) => void, limits: Partial<GroupLimits> = {}) {
    this.#send = send;
    this.#limits = { ...GROUP_LIMITS, ...limits };
  }

  /** Adds the session to the group (created on first join), rotates its key and tells every member. */
  join(name: string, member: GroupMemberInput): void {
    let group = this.#groups.get(name);
    if (group?.members.has(member.sessionId) === true) {
      this.#sendState(group, member.sessionId); // joined already (a resumed peer asks again)
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
    if (group.members.size === 0) this.#groups.delete(name);
    else this.#rotate(group);
    return true;
  }

  /** A session ended (logout, kick, expiry): out of every group, each rotated. */
  removeSession(sessionId: string): void {
    for (const name of this.groupsOf(sessionId)) {
      const group = this.#groups.get(name);
      if (group === undefined) continue;
      group.members.delete(sessionId);
      if (group.members.size === 0) this.#groups.delete(name);
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
    for (const sessionId of group.members.keys()) this.#sendState(group, sessionId);
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
