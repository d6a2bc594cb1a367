/**
 * Groups on the server: the registry alone (membership, keys, epochs, limits), then over real
 * sessions: join and leave through RendezvousClient, and a session that ends taking its groups along.
 */
import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, initCrypto, type MessageOf, type WireMessage } from '../../../common/index.js';
import { AdminClient } from '../../../rendezvous/admin/admin-client.js';
import { GroupRegistry, multicastAddressFor } from '../../../rendezvous/groups.js';
import { login, register, startServer } from '../../helpers/rendezvous.js';

beforeAll(initCrypto);

function registry(limits: ConstructorParameters<typeof GroupRegistry>[1] = {}) {
  const sent: { to: string; message: WireMessage }[] = [];
  const groups = new GroupRegistry((to, message) => sent.push({ to, message }), limits);
  const states = (to: string): MessageOf<'group.state'>[] =>
    sent.filter((s) => s.to === to && s.message.type === 'group.state').map((s) => s.message as MessageOf<'group.state'>);
  return { groups, sent, states };
}

const member = (sessionId: string, user = sessionId) => ({ sessionId, user, sigPk: generateIdentity().signing.publicKey });

describe('GroupRegistry', () => {
  it('creates a group on first join and gives the member the address, port, key and epoch', () => {
    const { groups, states } = registry();
    groups.join('class-3b', member('a1', 'alice'));
    const [state] = states('a1');
    expect(state).toMatchObject({ group: 'class-3b', address: multicastAddressFor('class-3b'), port: 7422, epoch: 1 });
    expect(state?.key).toHaveLength(32);
    expect(state?.members).toEqual([expect.objectContaining({ senderIdx: 0, user: 'alice', sessionId: 'a1' })]);
  });

  it('gives every member a new key and epoch when someone joins or leaves, and tells the leaver only that it left', () => {
    const { groups, states, sent } = registry();
    groups.join('g1', member('a1'));
    groups.join('g1', member('b1'));
    const afterJoin = states('a1').at(-1);
    expect(afterJoin?.epoch).toBe(2);
    expect(Buffer.from(afterJoin!.key).equals(Buffer.from(states('a1')[0]!.key))).toBe(false);
    expect(states('b1').at(-1)?.key).toEqual(afterJoin?.key);
    groups.leave('g1', 'b1');
    const afterLeave = states('a1').at(-1);
    expect(afterLeave?.epoch).toBe(3);
    expect(afterLeave?.members.map((m) => m.sessionId)).toEqual(['a1']);
    expect(states('b1').at(-1)?.epoch).toBe(2); // the leaver never sees the new key
    expect(sent.filter((s) => s.to === 'b1').at(-1)?.message).toEqual({ type: 'group.left', group: 'g1' });
  });

  it('keeps sender indexes unique within a group, never reusing one in the same incarnation', () => {
    const { groups, states } = registry();
    groups.join('g1', member('a1'));
    groups.join('g1', member('b1'));
    groups.leave('g1', 'a1');
    groups.join('g1', member('c1'));
    expect(states('c1').at(-1)?.members.map((m) => [m.sessionId, m.senderIdx])).toEqual([
      ['b1', 1],
      ['c1', 2],
    ]);
  });

  it('takes an ended session out of all its groups and forgets empty groups', () => {
    const { groups } = registry();
    groups.join('g1', member('a1'));
    groups.join('g2', member('a1'));
    groups.join('g2', member('b1'));
    groups.removeSession('a1');
    expect(groups.list().map((g) => [g.name, g.members.map((m) => m.sessionId)])).toEqual([['g2', ['b1']]]);
  });

  it('refuses a 17th group for one session and a member beyond the group size, with clear codes', () => {
    const { groups } = registry({ groupsPerSession: 2, membersPerGroup: 1 });
    groups.join('g1', member('a1'));
    groups.join('g2', member('a1'));
    expect(() => groups.join('g3', member('a1'))).toThrow(expect.objectContaining({ code: 'SALA_E_RATE_LIMIT' }));
    expect(() => groups.join('g1', member('b1'))).toThrow(expect.objectContaining({ code: 'SALA_E_RATE_LIMIT' }));
  });

  it('answers a repeated join with the current state, without rotating', () => {
    const { groups, states } = registry();
    groups.join('g1', member('a1'));
    groups.join('g1', member('a1'));
    expect(states('a1').map((s) => s.epoch)).toEqual([1, 1]);
  });

  it('puts every group address in the organisation-local scope 239.192.0.0/14', () => {
    for (const name of ['a1', 'class-3b', 'zz', 'maths_group']) {
      const [a, b, , d] = multicastAddressFor(name).split('.').map(Number);
      expect(a).toBe(239);
      expect(b! & 0xfc).toBe(192);
      expect(d).not.toBe(0);
      expect(d).not.toBe(255);
    }
  });
});

describe('groups over real sessions', () => {
  it('joins through the client, rejoins after a server-side kick of another member, and refuses a bad name gracefully', async () => {
    const server = await startServer();
    await register(server, 'alice');
    await register(server, 'bob');
    const alice = await login(server, 'alice');
    const bob = await login(server, 'bob');
    const first = once(alice, 'group.state') as Promise<[MessageOf<'group.state'>]>;
    alice.joinGroup('class-3b');
    expect((await first)[0]).toMatchObject({ group: 'class-3b', epoch: 1 });
    const rotated = once(alice, 'group.state') as Promise<[MessageOf<'group.state'>]>;
    bob.joinGroup('class-3b');
    expect((await rotated)[0].members.map((m) => m.user).sort()).toEqual(['alice', 'bob']);

    // Bob is kicked: alice gets a new key without him.
    const afterKick = once(alice, 'group.state') as Promise<[MessageOf<'group.state'>]>;
    const admin = await AdminClient.fromDataDir(server.dataDir);
    await admin.kick('bob');
    const [state] = await afterKick;
    expect(state.members.map((m) => m.user)).toEqual(['alice']);
    expect(state.epoch).toBe(3);

    const refused = once(alice, 'group.left') as Promise<[string, { code: string } | undefined]>;
    alice.joinGroup('Not A Name!');
    const [name, error] = await refused;
    expect(name).toBe('Not A Name!');
    expect(error?.code).toBe('SALA_E_INVALID_NAME');
    expect(alice.isConnected).toBe(true);
  });
});
