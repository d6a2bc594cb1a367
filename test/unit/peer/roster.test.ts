import { beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, generateIdentity, initCrypto, type DirectoryEntry } from '../../../common/index.js';
import { PeerRoster } from '../../../peer/roster.js';

beforeAll(initCrypto);

function entry(user: string, sessionId: string, hosts: string[], identity = generateIdentity()): DirectoryEntry {
  return {
    user,
    sessionId,
    addresses: hosts.map((host) => ({ host, port: 4000 })),
    dhPk: identity.dh.publicKey,
    sigPk: identity.signing.publicKey,
    since: 1,
  };
}

function events(roster: PeerRoster): string[] {
  const seen: string[] = [];
  roster.on('peer.online', ({ user }) => seen.push(`+${user}`));
  roster.on('peer.offline', ({ user }) => seen.push(`-${user}`));
  return seen;
}

describe('PeerRoster', () => {
  it('lists every other user once, never oneself, sorted', () => {
    const roster = new PeerRoster('alice');
    roster.resetDirectory([entry('carol', 'c1', ['10.0.0.3']), entry('alice', 'a1', ['10.0.0.1']), entry('bob', 'b1', ['10.0.0.2'])]);
    expect(roster.list().map((p) => p.user)).toEqual(['bob', 'carol']);
  });

  it('merges a device seen in the directory and on mDNS into one entry with both sources and no duplicate address', () => {
    const roster = new PeerRoster('alice');
    const bob = generateIdentity();
    roster.resetDirectory([entry('bob', 'b1', ['10.0.0.2', '192.168.5.2'], bob)]);
    roster.mdnsSeen({ user: 'bob', fingerprint: fingerprint(bob.signing.publicKey), addresses: [{ host: '10.0.0.2', port: 4000 }] });
    expect(roster.list()).toEqual([{ user: 'bob', online: true, addresses: ['10.0.0.2:4000', '192.168.5.2:4000'], via: ['directory', 'mdns'] }]);
  });

  it('shows a user with two devices once, with the addresses of both', () => {
    const roster = new PeerRoster('alice');
    roster.resetDirectory([entry('bob', 'b1', ['10.0.0.2']), entry('bob', 'b2', ['10.0.0.7'])]);
    expect(roster.list()).toEqual([{ user: 'bob', online: true, addresses: ['10.0.0.2:4000', '10.0.0.7:4000'], via: ['directory'] }]);
    expect(roster.targets('bob').map((t) => t.sessionId).sort()).toEqual(['b1', 'b2']);
  });

  it('emits peer.online once when a user appears and peer.offline when the last of their devices goes', () => {
    const roster = new PeerRoster('alice');
    const seen = events(roster);
    const phone = generateIdentity();
    roster.applyDirectory([entry('bob', 'b1', ['10.0.0.2'])], []);
    roster.applyDirectory([entry('bob', 'b2', ['10.0.0.7'], phone)], []);
    roster.applyDirectory([], [{ user: 'bob', sessionId: 'b1' }]);
    expect(seen).toEqual(['+bob']);
    roster.applyDirectory([], [{ user: 'bob', sessionId: 'b2' }]);
    expect(seen).toEqual(['+bob', '-bob']);
    expect(roster.list()).toEqual([{ user: 'bob', online: false, addresses: [], via: [] }]);
  });

  it('keeps a user online on mDNS alone while the server is away, and says so in via', () => {
    const roster = new PeerRoster('alice');
    const bob = generateIdentity();
    roster.resetDirectory([entry('bob', 'b1', ['10.0.0.2'], bob)]);
    roster.mdnsSeen({ user: 'bob', fingerprint: fingerprint(bob.signing.publicKey), addresses: [{ host: '10.0.0.2', port: 4000 }] });
    roster.setDirectoryAuthoritative(false);
    roster.resetDirectory([]);
    expect(roster.list()).toEqual([{ user: 'bob', online: true, addresses: ['10.0.0.2:4000'], via: ['mdns'] }]);
    expect(roster.targets('bob')).toEqual([{ sessionId: undefined, endpoints: [{ host: '10.0.0.2', port: 4000 }] }]);
  });

  it('does not let an mDNS claim alone make a user online while the server directory is reachable', () => {
    const roster = new PeerRoster('alice');
    const seen = events(roster);
    roster.mdnsSeen({ user: 'bob', fingerprint: 'AAAA-BBBB-CCCC-DDDD', addresses: [{ host: '10.0.0.66', port: 1 }] });
    expect(roster.list()).toEqual([{ user: 'bob', online: false, addresses: ['10.0.0.66:1'], via: ['mdns'] }]);
    expect(seen).toEqual([]);
    // Still worth a dial (the handshake proves who answers), after any device the server vouches for.
    roster.applyDirectory([entry('bob', 'b1', ['10.0.0.2'])], []);
    expect(roster.targets('bob').map((t) => t.sessionId)).toEqual(['b1', undefined]);
    expect(seen).toEqual(['+bob']);
  });

  it('forgets an mDNS-only device on its goodbye', () => {
    const roster = new PeerRoster('alice');
    roster.setDirectoryAuthoritative(false);
    const seen = events(roster);
    roster.mdnsSeen({ user: 'dan', fingerprint: 'AAAA-BBBB-CCCC-DDDD', addresses: [{ host: '10.0.0.9', port: 1 }] });
    roster.mdnsGone({ user: 'dan', fingerprint: 'AAAA-BBBB-CCCC-DDDD' });
    expect(seen).toEqual(['+dan', '-dan']);
    expect(roster.targets('dan')).toEqual([]);
  });

  it('lists remembered users (history, messages written) as offline until seen', () => {
    const roster = new PeerRoster('alice');
    roster.remember('zoe');
    roster.remember('alice');
    expect(roster.list()).toEqual([{ user: 'zoe', online: false, addresses: [], via: [] }]);
  });

  it('formats IPv6 addresses with brackets', () => {
    const roster = new PeerRoster('alice');
    roster.resetDirectory([entry('bob', 'b1', ['fd00::2'])]);
    expect(roster.list()[0]?.addresses).toEqual(['[fd00::2]:4000']);
  });
});
