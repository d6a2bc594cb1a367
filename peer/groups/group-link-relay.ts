import { silentLogger, type Logger } from '../../common/index.js';
import { sendOnLink, type PeerLink } from '../links/link-manager.js';
import { markInteractive } from '../links/link-priority.js';
import type { LinkTarget } from './group-service-options.js';

export interface GroupLinkRelayOptions {
  /** The live link to a session, if any. */
  linkTo: (sessionId: string) => PeerLink | undefined;
  /** Dials one session of a user; true when a link is up (its link.up reaches attach() first). */
  dial: (user: string, sessionId: string) => Promise<boolean>;
  /** A datagram that arrived over a link, for GroupService.receiveFromLink(). */
  onDatagram: (datagram: Uint8Array) => void;
  /** Datagrams held per session while its link is being dialled; the oldest go first beyond it. */
  maxQueuedPerSession?: number;
  /** Held datagrams older than this are dropped (the receiver's NACK asks again if it still cares). */
  maxQueuedAgeMs?: number;
  /** After a failed dial, datagrams for that session are dropped for this long instead of redialling. */
  dialBackoffMs?: number;
  logger?: Logger;
}

/** How long a datagram sent on a link is kept to send again on a replacement link, and how many. */
const RECENT_MS = 2_000;
const MAX_RECENT_PER_SESSION = 64;
const MAX_RECENT_SESSIONS = 1_024;

interface Held {
  readonly datagram: Uint8Array;
  readonly atMs: number;
}

/**
 * The multicast fallback's transport (issue 7 §4): group datagrams carried as `group.datagram`
 * messages over the direct links. A member without a link is dialled once, with its datagrams held
 * meanwhile (bounded in count and age), so the first message of a conversation is not lost to the
 * dial; a member that cannot be reached is not dialled again for a while. Anything dropped here is
 * what UDP would have lost, and the group layer's NACK/REPAIR recovers it once the link is up.
 */
export class GroupLinkRelay {
  readonly #options: GroupLinkRelayOptions;
  readonly #log: Logger;
  readonly #held = new Map<string, Held[]>();
  /** What went out on each session's link lately: sent again if that link is replaced. */
  readonly #recent = new Map<string, Held[]>();
  /** Dials in progress by session; each settles once the session is linked (held datagrams sent) or given up. */
  readonly #dialling = new Map<string, Promise<void>>();
  readonly #failedAt = new Map<string, number>();
  #isClosed = false;

  constructor(options: GroupLinkRelayOptions) {
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
  }

  /**
   * Sends a sealed group datagram to each member over its link, dialling the ones not linked yet;
   * the promise settles when it is on its way to all of them or they could not be reached.
   */
  send(datagram: Uint8Array, members: readonly LinkTarget[]): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    const dials: Promise<void>[] = [];
    for (const member of members) {
      const link = this.#options.linkTo(member.sessionId);
      if (link !== undefined && !link.messages.isClosed) {
        this.#sendNow(link, datagram);
        continue;
      }
      const dial = this.#hold(member, datagram);
      if (dial !== undefined) dials.push(dial);
    }
    return Promise.all(dials).then(() => undefined);
  }

  /** A new link: its group datagrams go to the group layer, and what was held for it goes out. */
  attach(link: PeerLink): void {
    link.messages.on('message', (message) => {
      if (message.type === 'group.datagram' && !this.#isClosed) this.#options.onDatagram(message.data);
    });
    this.#failedAt.delete(link.peer.sid);
    // Two peers dialling each other at once get two links and both close one: what went out on
    // the closed one in the meantime is lost unless sent again (duplicates are dropped unread).
    const recent = this.#recent.get(link.peer.sid);
    if (recent !== undefined) {
      this.#recent.delete(link.peer.sid);
      const oldestMs = performance.now() - RECENT_MS;
      for (const { datagram, atMs } of recent) if (atMs >= oldestMs) this.#sendNow(link, datagram);
    }
    this.#flush(link);
  }

  close(): void {
    this.#isClosed = true;
    this.#held.clear();
    this.#recent.clear();
  }

  #sendNow(link: PeerLink, datagram: Uint8Array): void {
    // Group chat is interactive: a file transfer on the same link holds back for it.
    markInteractive(link);
    sendOnLink(link, { type: 'group.datagram', data: datagram });
    const nowMs = performance.now();
    let recent = this.#recent.get(link.peer.sid);
    if (recent === undefined) {
      if (this.#recent.size >= MAX_RECENT_SESSIONS) this.#recent.clear();
      recent = [];
      this.#recent.set(link.peer.sid, recent);
    }
    while (recent.length > 0 && (recent.length >= MAX_RECENT_PER_SESSION || (recent[0]?.atMs ?? nowMs) < nowMs - RECENT_MS)) recent.shift();
    recent.push({ datagram, atMs: nowMs });
  }

  /** Sends what was held for the link's session (skipping what is too old to matter). */
  #flush(link: PeerLink): void {
    const held = this.#held.get(link.peer.sid);
    if (held === undefined) return;
    this.#held.delete(link.peer.sid);
    const oldestMs = performance.now() - (this.#options.maxQueuedAgeMs ?? 10_000);
    for (const { datagram, atMs } of held) if (atMs >= oldestMs) this.#sendNow(link, datagram);
  }

  /** Holds a datagram for a member without a link; returns the dial that will send it. */
  #hold(member: LinkTarget, datagram: Uint8Array): Promise<void> | undefined {
    const nowMs = performance.now();
    const failedAt = this.#failedAt.get(member.sessionId);
    if (failedAt !== undefined && nowMs - failedAt < (this.#options.dialBackoffMs ?? 5_000)) return undefined;
    let held = this.#held.get(member.sessionId);
    if (held === undefined) {
      held = [];
      this.#held.set(member.sessionId, held);
    }
    held.push({ datagram, atMs: nowMs });
    if (held.length > (this.#options.maxQueuedPerSession ?? 128)) held.shift();
    let dial = this.#dialling.get(member.sessionId);
    if (dial === undefined) {
      dial = this.#dial(member).finally(() => this.#dialling.delete(member.sessionId));
      this.#dialling.set(member.sessionId, dial);
    }
    return dial;
  }

  async #dial(member: LinkTarget): Promise<void> {
    let isLinked = false;
    try {
      isLinked = await this.#options.dial(member.user, member.sessionId);
    } catch (err) {
      this.#log.info('group.relay_dial_failed', { user: member.user, message: String(err) });
    }
    if (this.#isClosed) return;
    const link = isLinked ? this.#options.linkTo(member.sessionId) : undefined;
    if (link !== undefined) {
      this.#flush(link);
      return;
    }
    // Unreachable for now: drop what waited, and do not dial again on every datagram.
    this.#held.delete(member.sessionId);
    this.#failedAt.set(member.sessionId, performance.now());
    if (this.#failedAt.size > 4_096) this.#failedAt.clear();
  }
}
