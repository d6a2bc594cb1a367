/**
 * The fallback to direct links when multicast does not work for a member. The links themselves
 * belong to the Peer; here a fake `sendOverLinks` hook hands each datagram straight to the other
 * GroupService's receiveFromLink(), in-process. Two ways of breaking multicast are used:
 *
 * - simulated: the member's openSocket() rejects (as when the port is taken or the OS refuses);
 * - real: the member's socket is pinned to a veth interface that is down, created for the test in
 *   the runner's private namespace; the kernel refuses its sends (ENETUNREACH), so the self-test
 *   probe never comes back, and everything it sends goes over links. (Anything that reached it both
 *   ways would be dropped the second time as a duplicate.)
 *
 * Everything runs inside describeLan, in the runner's private network namespace.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it, onTestFinished } from 'vitest';
import type { GroupService } from '../../../../peer/groups/group-service.js';
import type { GroupServiceOptions } from '../../../../peer/groups/group-service-options.js';
import { MulticastSocket } from '../../../../peer/groups/multicast-socket.js';
import { HARNESS_LINK_PREFIX, describeLan } from '../../../harness/netns.js';
import { createMember, FakeGroupServer, freeUdpPort, receivedAtLeast, texts, type Member } from './group-kit.js';

const execFileAsync = promisify(execFile);
const GROUP = 'class';

/** In-process "links": the hook delivers at once, before the sender's next line runs. */
function linkMesh(): { hook: NonNullable<GroupServiceOptions['sendOverLinks']>; add: (member: Member) => void; sends: { group: string; to: string[] }[] } {
  const services = new Map<string, GroupService>();
  const sends: { group: string; to: string[] }[] = [];
  return {
    hook: (group, datagram, members) => {
      sends.push({ group, to: members.map((m) => m.user) });
      for (const member of members) services.get(member.sessionId)?.receiveFromLink(Uint8Array.from(datagram));
    },
    add: (member) => services.set(member.sessionId, member.service),
    sends,
  };
}

async function exchange(alice: Member, bob: Member): Promise<void> {
  const fromAlice = ['a0', `a1:${'x'.repeat(2_500)}`, 'a2', 'a-end'];
  const fromBob = ['b0', `b1:${'y'.repeat(2_500)}`, 'b2', 'b-end'];
  for (let i = 0; i < fromAlice.length; i += 1) {
    alice.service.send(GROUP, fromAlice[i] ?? '');
    bob.service.send(GROUP, fromBob[i] ?? '');
  }
  await Promise.all([receivedAtLeast(alice, fromBob.length), receivedAtLeast(bob, fromAlice.length)]);
  expect(texts(bob)).toEqual(fromAlice);
  expect(texts(alice)).toEqual(fromBob);
}

async function ip(args: readonly string[]): Promise<void> {
  await execFileAsync('ip', args);
}

describeLan('GroupService fallback to direct links (in the test network namespace)', () => {
  it('uses no links while multicast works for everyone', async () => {
    const server = new FakeGroupServer(await freeUdpPort());
    const mesh = linkMesh();
    const alice = await createMember(server, 'alice', { sendOverLinks: mesh.hook });
    const bob = await createMember(server, 'bob', { sendOverLinks: mesh.hook });
    mesh.add(alice);
    mesh.add(bob);
    await alice.service.join(GROUP);
    await bob.service.join(GROUP);
    await exchange(alice, bob);
    expect(mesh.sends).toEqual([]);
    expect(bob.service.isMulticastWorking(GROUP)).toBe(true);
    expect([...alice.warnings, ...bob.warnings]).toEqual([]);
  });

  it('falls back to links for a member whose socket cannot be opened (simulated fault), both ways, once and in order', async () => {
    const server = new FakeGroupServer(await freeUdpPort());
    const mesh = linkMesh();
    const alice = await createMember(server, 'alice', { sendOverLinks: mesh.hook });
    const bob = await createMember(server, 'bob', {
      sendOverLinks: mesh.hook,
      openSocket: () => Promise.reject(new Error('simulated: the group port cannot be opened')),
    });
    mesh.add(alice);
    mesh.add(bob);
    await alice.service.join(GROUP);
    await bob.service.join(GROUP);

    expect(alice.service.isMulticastWorking(GROUP)).toBe(true);
    expect(bob.service.isMulticastWorking(GROUP)).toBe(false);
    await exchange(alice, bob);
    // Bob sends everything over links; Alice multicasts and also sends to Bob over a link.
    expect(mesh.sends.every((s) => s.to.length === 1)).toBe(true);
    expect(mesh.sends.some((s) => s.to[0] === 'bob')).toBe(true);
    expect(mesh.sends.some((s) => s.to[0] === 'alice')).toBe(true);
    expect(bob.warnings.map((w) => w.code)).toEqual(['SALA_E_GROUP_MULTICAST_UNAVAILABLE']);
    expect(bob.warnings[0]?.message).toMatch(/Multicast does not work for the group class/);
    expect(alice.warnings).toEqual([]);
  });

  it('falls back to links for a member whose LAN interface is down (real fault: a down veth), both ways, once and in order', async () => {
    const suffix = process.pid % 10_000;
    const iface = `${HARNESS_LINK_PREFIX}gv${suffix}`;
    const address = `10.254.${suffix % 250}.1`;
    await ip(['link', 'add', iface, 'type', 'veth', 'peer', 'name', `${iface}p`]);
    onTestFinished(() => ip(['link', 'del', iface]));
    await ip(['addr', 'add', `${address}/24`, 'dev', iface]); // and it stays down

    const server = new FakeGroupServer(await freeUdpPort());
    const mesh = linkMesh();
    const alice = await createMember(server, 'alice', { sendOverLinks: mesh.hook });
    const bob = await createMember(server, 'bob', {
      sendOverLinks: mesh.hook,
      openSocket: (port) => MulticastSocket.open({ port, interfaceAddress: address }),
    });
    mesh.add(alice);
    mesh.add(bob);
    await alice.service.join(GROUP);
    await bob.service.join(GROUP);

    expect(alice.service.isMulticastWorking(GROUP)).toBe(true);
    expect(bob.service.isMulticastWorking(GROUP)).toBe(false);
    await exchange(alice, bob);
    // The kernel's refusal of the probe (a socket warning) and the fallback itself.
    // The failed probe's send error (from the socket) and the switch to links.
    expect(bob.warnings.every((w) => w.code === 'SALA_E_CONNECTION_FAILED' || w.code === 'SALA_E_GROUP_MULTICAST_UNAVAILABLE')).toBe(true);
    expect(bob.warnings.some((w) => w.code === 'SALA_E_GROUP_MULTICAST_UNAVAILABLE')).toBe(true);
    expect(bob.warnings.some((w) => /Multicast does not work for the group class/.test(w.message))).toBe(true);
    expect(alice.warnings).toEqual([]);
  });
});
