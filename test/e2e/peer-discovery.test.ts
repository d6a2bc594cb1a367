import { isIPv4 } from 'node:net';
import { expect, it } from 'vitest';
import type { JsonChild, JsonLine } from '../../common/process/json-child.js';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import { describeLan } from '../harness/netns.js';
import { MAX_BROWSED_SERVICES } from '../../peer/discovery/peer-discovery.js';

/**
 * Peer discovery (`_sala._tcp`) on a simulated LAN of three hosts: peers on hosts 2 and 3 announce
 * themselves and browse; each sees the other once, with its user, device fingerprint and address,
 * and sees it go on the mDNS goodbye. Every process runs in a harness-made namespace.
 */

const PROBE = 'test/harness/discovery-probe.js';
const WAIT_MS = 10_000;
const ALICE = { user: 'alice', fingerprint: 'AAAA-BBBB-CCCC-DDDD', port: 41_001 } as const;
const BOB = { user: 'bob', fingerprint: 'EEEE-FFFF-GGGG-HHHH', port: 41_002 } as const;
const CAROL = { user: 'carol', fingerprint: 'IIII-JJJJ-KKKK-LLLL', port: 41_003 } as const;

type Who = typeof ALICE | typeof BOB | typeof CAROL;
/** A short entry TTL, so expiry is seen within a test; queries go out every max(1 s, TTL/4). */
const SHORT_TTL_MS = 3_000;

/** `interfaceAddress` '-' runs the probe unpinned: every address of every interface is announced. */
function startProbe(lan: Lan, index: number, who: Who, interfaceAddress: string = lan.host(index).address, ttlMs?: number): JsonChild {
  const ttl = ttlMs === undefined ? [] : [String(ttlMs)];
  return lan.spawn(index, [distScript(PROBE), who.user, who.fingerprint, String(who.port), interfaceAddress, ...ttl]);
}

function seen(child: JsonChild, who: Who): Promise<JsonLine> {
  return child.waitForEvent('peer.seen', { timeoutMs: WAIT_MS }).then((line) => {
    expect(line).toMatchObject({ user: who.user, fingerprint: who.fingerprint });
    return line;
  });
}

async function peersOf(child: JsonChild): Promise<unknown[]> {
  const answer = child.waitForEvent('peers', { timeoutMs: WAIT_MS });
  child.send({ cmd: 'peers' });
  const line = await answer;
  return Array.isArray(line['peers']) ? (line['peers'] as unknown[]) : [];
}

/** How many services bonjour's Browser holds in the probe, and how often it was replaced. */
async function browsingOf(child: JsonChild): Promise<{ browsed: number; resets: number }> {
  const answer = child.waitForEvent('peers', { timeoutMs: WAIT_MS });
  child.send({ cmd: 'peers' });
  const line = await answer;
  return { browsed: Number(line['browsed']), resets: Number(line['resets']) };
}

/** Host `index`'s address with the last octet replaced: a second address on the same subnet. */
function secondAddressOf(lan: Lan, index: number): string {
  return lan.host(index).address.replace(/\.\d+$/, '.200');
}

describeLan('peer discovery on a LAN', () => {
  it('lets peers on two hosts see each other with their user, fingerprint and address', async () => {
    const lan = await useLan(3);
    const alice = startProbe(lan, 1, ALICE);
    const bob = startProbe(lan, 2, BOB);

    const [bobSeen, aliceSeen] = await Promise.all([seen(alice, BOB), seen(bob, ALICE)]);
    expect(bobSeen['addresses']).toEqual([{ host: lan.host(2).address, port: BOB.port }]);
    expect(aliceSeen['addresses']).toEqual([{ host: lan.host(1).address, port: ALICE.port }]);

    // Its own announcement never shows up, and each side has exactly one entry.
    expect(await peersOf(alice)).toEqual([{ user: BOB.user, fingerprint: BOB.fingerprint, addresses: [{ host: lan.host(2).address, port: BOB.port }] }]);
    expect(await peersOf(bob)).toEqual([{ user: ALICE.user, fingerprint: ALICE.fingerprint, addresses: [{ host: lan.host(1).address, port: ALICE.port }] }]);
    expect(alice.lines.filter((l) => l['event'] === 'peer.seen' && l['user'] === ALICE.user)).toEqual([]);
  });

  // A pinned peer announces only the address it was given (the address filter), so a host with a
  // second address on eth0 still gives one entry with one address.
  it('shows a pinned two-address host as one entry with only the announced address', async () => {
    const lan = await useLan(3);
    await lan.exec(1, 'ip', ['address', 'add', `${secondAddressOf(lan, 1)}/24`, 'dev', 'eth0']);
    const alice = startProbe(lan, 1, ALICE);
    const bob = startProbe(lan, 2, BOB);

    const aliceSeen = await seen(bob, ALICE);
    expect(aliceSeen['addresses']).toEqual([{ host: lan.host(1).address, port: ALICE.port }]);
    await seen(alice, BOB);
    expect(await peersOf(bob)).toEqual([{ user: ALICE.user, fingerprint: ALICE.fingerprint, addresses: [{ host: lan.host(1).address, port: ALICE.port }] }]);
  });

  // Unpinned, bonjour-service announces every address of every interface: still one entry, which
  // merges them.
  it('shows an unpinned two-address host as one entry holding both addresses', async () => {
    const lan = await useLan(3);
    await lan.exec(1, 'ip', ['address', 'add', `${secondAddressOf(lan, 1)}/24`, 'dev', 'eth0']);
    startProbe(lan, 1, ALICE, '-');
    const bob = startProbe(lan, 2, BOB);

    await seen(bob, ALICE);
    const peers = await peersOf(bob);
    expect(peers).toHaveLength(1);
    expect(peers[0]).toMatchObject({ user: ALICE.user, fingerprint: ALICE.fingerprint });
    const hosts = (peers[0] as { addresses: { host: string }[] }).addresses.map((a) => a.host);
    // eth0's IPv6 link-local address is announced too (bonjour-service adds AAAA records).
    expect(hosts.filter((h) => isIPv4(h)).sort()).toEqual([lan.host(1).address, secondAddressOf(lan, 1)].sort());
    expect(hosts.filter((h) => !isIPv4(h)).every((h) => h.toLowerCase().startsWith('fe80:'))).toBe(true);
  });

  it('reports a peer gone when its probe closes and says goodbye', async () => {
    const lan = await useLan(3);
    const alice = startProbe(lan, 1, ALICE);
    const bob = startProbe(lan, 2, BOB);
    await Promise.all([seen(alice, BOB), seen(bob, ALICE)]);

    expect(await bob.stop()).toEqual({ code: 0, signal: null });
    expect(bob.lines.some((l) => l['event'] === 'discovery.closed')).toBe(true);
    const gone = await alice.waitForEvent('peer.gone', { timeoutMs: WAIT_MS });
    expect(gone).toEqual({ event: 'peer.gone', user: BOB.user, fingerprint: BOB.fingerprint });
    expect(await peersOf(alice)).toEqual([]);
  });

  // No goodbye when a cable is pulled: the entry must expire, while a peer that keeps answering the
  // periodic queries stays.
  it('drops a peer that vanished without a goodbye after the TTL and keeps one that still answers', async () => {
    const lan = await useLan(3);
    const alice = startProbe(lan, 1, ALICE, lan.host(1).address, SHORT_TTL_MS);
    const bob = startProbe(lan, 2, BOB, lan.host(2).address, SHORT_TTL_MS);
    const carol = startProbe(lan, 0, CAROL, lan.host(0).address, SHORT_TTL_MS);
    await alice.waitFor((l) => l['event'] === 'peer.seen' && l['user'] === BOB.user, { timeoutMs: WAIT_MS, description: 'bob seen' });
    await alice.waitFor((l) => l['event'] === 'peer.seen' && l['user'] === CAROL.user, { timeoutMs: WAIT_MS, description: 'carol seen' });
    await carol.waitFor((l) => l['event'] === 'peer.seen' && l['user'] === ALICE.user, { timeoutMs: WAIT_MS, description: 'alice seen' });

    await lan.linkDown(2);
    const gone = await alice.waitForEvent('peer.gone', { timeoutMs: 4 * SHORT_TTL_MS });
    expect(gone).toMatchObject({ user: BOB.user, fingerprint: BOB.fingerprint });
    // Bob's entry lived more than a TTL past its last answer; carol answered all along.
    expect(alice.lines.filter((l) => l['event'] === 'peer.gone').map((l) => l['user'])).toEqual([BOB.user]);
    expect((await peersOf(alice)).map((p) => (p as { user: string }).user)).toEqual([CAROL.user]);
    expect(bob.exitStatus).toBeUndefined();
  });

  it('keeps bonjour\'s own service list bounded under a flood of made-up names, and keeps the real peer', async () => {
    const lan = await useLan(3);
    const alice = startProbe(lan, 1, ALICE, lan.host(1).address, SHORT_TTL_MS);
    const bob = startProbe(lan, 2, BOB, lan.host(2).address, SHORT_TTL_MS);
    await alice.waitFor((l) => l['event'] === 'peer.seen' && l['user'] === BOB.user, { timeoutMs: WAIT_MS, description: 'bob seen' });
    // A host announcing more names than MAX_BROWSED_SERVICES, answering every query with all of them.
    const count = MAX_BROWSED_SERVICES + 400; // some of the burst is lost on the way
    const vacant = lan.host(0).address.replace(/\.\d+$/, '.250');
    const services = Array.from({ length: count }, (_, i) => ({ name: `junk-${i}`, port: 9, txt: ['u=junk'], addresses: [vacant] }));
    const flood = lan.spawn(0, [distScript('test/harness/mdns-flood-probe.js'), 'announce', lan.host(0).address, JSON.stringify(services)]);
    for (let i = 0; i < count; i += 1) await flood.waitForEvent('flood.announced', { timeoutMs: WAIT_MS });
    // Each sweep (every second with this TTL) finds the list over the bound and starts a fresh Browser.
    const deadline = Date.now() + 4 * SHORT_TTL_MS;
    for (let browsing = await browsingOf(alice); browsing.resets === 0; browsing = await browsingOf(alice)) {
      if (Date.now() > deadline) throw new Error(`no Browser reset; bonjour holds ${browsing.browsed} services`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // The real peer is still listed, and was never reported gone.
    expect((await peersOf(alice)).map((p) => (p as { user: string }).user)).toEqual([BOB.user]);
    expect(alice.lines.filter((l) => l['event'] === 'peer.gone')).toEqual([]);
    expect(bob.exitStatus).toBeUndefined();
  });
});
