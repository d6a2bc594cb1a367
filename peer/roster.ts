import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { fingerprint, type DirectoryEntry, type Endpoint } from '../common/index.js';
import type { DiscoveredPeer } from './discovery/index.js';

export type PeerSource = 'mdns' | 'directory';

/** One other user as `peers` shows it (CONTRACT.md): every known user, online or not, never oneself. */
export interface PeerInfo {
  user: string;
  online: boolean;
  /** `host:port` (`[v6]:port`) where their devices accept links, without duplicates. */
  addresses: string[];
  /** Where we learnt of them now: the server directory, mDNS, or both. */
  via: PeerSource[];
}

/** A device of a user we could dial: its session (when the server told us) and its addresses. */
export interface DialTarget {
  sessionId: string | undefined;
  endpoints: Endpoint[];
}

interface Device {
  /** The device's signing key fingerprint: what mDNS announces and the directory's sigPk hashes to. */
  fingerprint: string;
  user: string;
  sessionId: string | undefined;
  directoryEndpoints: Endpoint[];
  mdnsEndpoints: Endpoint[];
}

export interface RosterEvents {
  'peer.online': [{ user: string }];
  'peer.offline': [{ user: string }];
  /** A device appeared or moved: a chance to deliver what waits for that user. */
  'peer.sighted': [{ user: string }];
}

/** The most users remembered while offline (beyond the ones online now): bounded like everything else. */
const MAX_REMEMBERED_USERS = 1_000;

/**
 * Who else is out there: the server's directory and mDNS sightings merged into one entry per device
 * (keyed by its device key, so a multi-homed host or a device seen both ways is one entry) and one
 * `peers` entry per user. Emits peer.online / peer.offline when a user's presence changes.
 * mDNS entries are hints for dialling only; who someone is comes from the link handshake.
 */
export class PeerRoster extends EventEmitter<RosterEvents> {
  readonly #me: string;
  readonly #devices = new Map<string, Device>();
  /** Users seen at some point (or in the history): listed as offline once their devices are gone. */
  readonly #known = new Set<string>();
  readonly #online = new Set<string>();
  /**
   * While the server is reachable its directory says who is logged in; an mDNS claim alone (which
   * anyone on the LAN can make, for any name) then does not make a user online. During an outage
   * mDNS is all there is, and a link handshake still proves who answers.
   */
  #isDirectoryAuthoritative = true;

  constructor(me: string) {
    super();
    this.#me = me;
  }

  /** The full directory (a welcome, also after a resume): replaces everything the server said before. */
  resetDirectory(entries: readonly DirectoryEntry[]): void {
    const touched = this.#forgetDirectory(() => true);
    for (const entry of entries) touched.add(this.#addDirectoryEntry(entry));
    this.#prune();
    this.#refresh(touched);
  }

  applyDirectory(online: readonly DirectoryEntry[], offline: readonly { user: string; sessionId: string }[]): void {
    const goneSessions = new Set(offline.map((gone) => gone.sessionId));
    const touched = this.#forgetDirectory((device) => device.sessionId !== undefined && goneSessions.has(device.sessionId));
    for (const entry of online) touched.add(this.#addDirectoryEntry(entry));
    this.#prune();
    this.#refresh(touched);
  }

  mdnsSeen(peer: DiscoveredPeer): void {
    if (peer.user === this.#me) return;
    const device = this.#device(peer.fingerprint, peer.user);
    device.mdnsEndpoints = peer.addresses.map((a) => ({ host: a.host, port: a.port }));
    this.#refresh(new Set([device.user]));
    this.emit('peer.sighted', { user: device.user });
  }

  mdnsGone(peer: { user: string; fingerprint: string }): void {
    const device = this.#devices.get(peer.fingerprint);
    if (device === undefined) return;
    device.mdnsEndpoints = [];
    this.#prune();
    this.#refresh(new Set([device.user]));
  }

  /** A user we have talked to (from the history): listed as offline until seen. */
  remember(user: string): void {
    if (user === this.#me || this.#known.has(user) || this.#known.size >= MAX_REMEMBERED_USERS) return;
    this.#known.add(user);
  }

  /** The server connection is up (true) or lost (false). */
  setDirectoryAuthoritative(isAuthoritative: boolean): void {
    if (this.#isDirectoryAuthoritative === isAuthoritative) return;
    this.#isDirectoryAuthoritative = isAuthoritative;
    this.#refresh(new Set([...this.#devices.values()].map((d) => d.user)));
  }

  isOnline(user: string): boolean {
    return this.#online.has(user);
  }

  /** Every other known user, sorted by name. */
  list(): PeerInfo[] {
    const users = [...new Set([...this.#known, ...[...this.#devices.values()].map((d) => d.user)])].sort();
    return users.map((user) => {
      const devices = [...this.#devices.values()].filter((d) => d.user === user);
      const addresses = new Set<string>();
      const via = new Set<PeerSource>();
      for (const device of devices) {
        for (const endpoint of [...device.directoryEndpoints, ...device.mdnsEndpoints]) addresses.add(formatEndpoint(endpoint));
        if (device.sessionId !== undefined) via.add('directory');
        if (device.mdnsEndpoints.length > 0) via.add('mdns');
      }
      return {
        user,
        online: this.#online.has(user),
        addresses: [...addresses],
        via: (['directory', 'mdns'] as const).filter((source) => via.has(source)),
      };
    });
  }

  /** The devices of `user` worth dialling, most recently announced by the server first. */
  targets(user: string): DialTarget[] {
    const targets: DialTarget[] = [];
    for (const device of this.#devices.values()) {
      if (device.user !== user) continue;
      const endpoints = uniqueEndpoints([...device.directoryEndpoints, ...device.mdnsEndpoints]);
      if (endpoints.length > 0) targets.push({ sessionId: device.sessionId, endpoints });
    }
    // Devices the server vouches for first, the most recently announced first.
    return targets.reverse().sort((a, b) => Number(a.sessionId === undefined) - Number(b.sessionId === undefined));
  }

  /** Forgets what the server said about the matching devices; returns their users. */
  #forgetDirectory(isMatch: (device: Device) => boolean): Set<string> {
    const touched = new Set<string>();
    for (const device of this.#devices.values()) {
      if ((device.sessionId !== undefined || device.directoryEndpoints.length > 0) && isMatch(device)) {
        device.sessionId = undefined;
        device.directoryEndpoints = [];
        touched.add(device.user);
      }
    }
    return touched;
  }

  #addDirectoryEntry(entry: DirectoryEntry): string {
    if (entry.user === this.#me) return entry.user;
    const device = this.#device(fingerprint(entry.sigPk), entry.user);
    // The directory is authoritative for which user a device key belongs to.
    device.user = entry.user;
    device.sessionId = entry.sessionId;
    device.directoryEndpoints = entry.addresses.map((a) => ({ host: a.host, port: a.port }));
    this.emit('peer.sighted', { user: entry.user });
    return entry.user;
  }

  #device(key: string, user: string): Device {
    let device = this.#devices.get(key);
    if (device === undefined) {
      device = { fingerprint: key, user, sessionId: undefined, directoryEndpoints: [], mdnsEndpoints: [] };
      this.#devices.set(key, device);
      this.remember(user);
    }
    return device;
  }

  /** Devices nobody vouches for any more are forgotten (their user stays known, offline). */
  #prune(): void {
    for (const [key, device] of this.#devices) {
      if (device.sessionId === undefined && device.mdnsEndpoints.length === 0) this.#devices.delete(key);
    }
  }

  #refresh(users: Set<string>): void {
    for (const user of users) {
      if (user === this.#me) continue;
      const isOnline = [...this.#devices.values()].some((d) => d.user === user && (d.sessionId !== undefined || !this.#isDirectoryAuthoritative));
      if (isOnline && !this.#online.has(user)) {
        this.#online.add(user);
        this.emit('peer.online', { user });
      } else if (!isOnline && this.#online.has(user)) {
        this.#online.delete(user);
        this.emit('peer.offline', { user });
      }
    }
  }
}

export function formatEndpoint(endpoint: Endpoint): string {
  return isIPv6(endpoint.host) ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

function uniqueEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  const seen = new Set<string>();
  return endpoints.filter((endpoint) => {
    const key = formatEndpoint(endpoint);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
