/**
 * Groups on the server: the registry alone (membership, keys, epochs, limits), then over real
 * sessions: join and leave through RendezvousClient, and a session that ends taking its groups along.
 */
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, initCrypto, writePrivateFileAsync, type MessageOf, type WireMessage } from '../../../common/index.js';
import { AdminClient } from '../../../rendezvous/admin/admin-client.js';
import { GROUPS_FILE, GroupRegistry, multicastAddressFor, parseSavedGroup, type SavedGroup } from '../../../rendezvous/groups.js';
import { login, register, startServer, tempDir } from '../../helpers/rendezvous.js';

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

describe('groups across a server restart', () => {
  it('saves every change before a member hears of it', async () => {
    const dir = tempDir();
    const file = join(dir, GROUPS_FILE);
    const seen: { epoch: number; savedEpoch: number | undefined; key: string; savedKey: string | undefined }[] = [];
    const groups = new GroupRegistry(
      (_to, message) => {
        if (message.type !== 'group.state') return;
        const saved = (JSON.parse(readFileSync(file, 'utf8')) as SavedGroup[]).find((g) => g.name === message.group);
        seen.push({ epoch: message.epoch, savedEpoch: saved?.epoch, key: Buffer.from(message.key).toString('base64'), savedKey: saved?.key });
      },
      {},
      { save: (saved) => writePrivateFileAsync(file, JSON.stringify(saved)), onError: (err) => { throw err; } },
    );
    groups.join('g1', member('a1'));
    await groups.idle();
    groups.join('g1', member('b1'));
    await groups.idle();
    groups.leave('g1', 'b1');
    groups.join('g2', member('a1')); // changes in a burst: each group's latest state goes out once saved
    await groups.idle();
    expect(seen.map((state) => state.epoch)).toEqual([1, 2, 2, 3, 1]);
    for (const state of seen) {
      expect(state.savedEpoch).toBe(state.epoch);
      expect(state.savedKey).toBe(state.key);
    }
    expect(statSync(file).mode & 0o777).toBe(process.platform === 'win32' ? statSync(file).mode & 0o777 : 0o600);
  });

  it('coalesces a burst of changes into a few saves, and sends each member only the saved latest state', async () => {
    let saves = 0;
    let lastSaved: SavedGroup[] = [];
    const sent: { to: string; message: WireMessage }[] = [];
    const groups = new GroupRegistry((to, message) => sent.push({ to, message }), {}, {
      save: async (saved) => {
        saves += 1;
        await new Promise((resolve) => setTimeout(resolve, 5)); // a disk that takes its time
        lastSaved = saved;
      },
      onError: (err) => {
        throw err;
      },
    });
    for (let i = 0; i < 30; i++) groups.join('class', member(`s${i}`));
    await groups.idle();
    expect(saves).toBeLessThanOrEqual(2);
    const states = sent.filter((s) => s.message.type === 'group.state').map((s) => s.message as MessageOf<'group.state'>);
    expect(new Set(states.map((state) => state.epoch))).toEqual(new Set([30]));
    expect(lastSaved[0]?.epoch).toBe(30);
  });

  it('restores groups, keys and epochs for the sessions that came back, and rotates when one did not', async () => {
    const saved: SavedGroup[] = [];
    const before = new GroupRegistry(() => undefined, {}, { save: async (groups) => void saved.splice(0, saved.length, ...groups), onError: () => undefined });
    before.join('g1', member('a1'));
    before.join('g1', member('b1'));
    before.join('g2', member('b1'));
    await before.idle();

    const { groups, states } = registry();
    groups.restore(JSON.parse(JSON.stringify(saved)) as SavedGroup[], (sessionId) => sessionId === 'a1');
    // b1 did not come back: g1 goes on with a1 under a new key; g2 had only b1 and is gone.
    const [rotated] = states('a1');
    const g1 = saved.find((g) => g.name === 'g1');
    expect(rotated).toMatchObject({ group: 'g1', epoch: (g1?.epoch ?? 0) + 1 });
    expect(Buffer.from(rotated!.groupId).toString('hex')).toBe(g1?.groupId);
    expect(groups.list().map((g) => g.name)).toEqual(['g1']);
    // A resumed peer asking again gets the restored group, not a new one.
    groups.join('g1', member('a1'));
    expect(states('a1').at(-1)).toMatchObject({ epoch: rotated?.epoch });
  });

  it('skips saved groups that do not parse, keeping the others', () => {
    const good = { name: 'ok', groupId: '00'.repeat(16), epoch: 3, key: Buffer.alloc(32, 1).toString('base64'), nextSenderIdx: 1, members: [{ sessionId: 's', user: 'u', sigPk: '11'.repeat(32), senderIdx: 0 }] };
    expect(parseSavedGroup(good)).toEqual(good);
    for (const bad of [null, { ...good, groupId: 'zz' }, { ...good, key: 'c2hvcnQ=' }, { ...good, epoch: -1 }, { ...good, members: [{ sessionId: 's' }] }, { ...good, name: '' }]) {
      expect(() => parseSavedGroup(bad)).toThrow(/saved group/);
    }
  });

  it('keeps a group, its id, epoch and key when the server restarts and its members resume', async () => {
    const dataDir = tempDir();
    const server = await startServer({ dataDir });
    await register(server, 'alice');
    await register(server, 'bob');
    const alice = await login(server, 'alice');
    const bob = await login(server, 'bob');
    alice.joinGroup('class');
    await once(alice, 'group.state');
    const joined = once(alice, 'group.state') as Promise<[MessageOf<'group.state'>]>;
    bob.joinGroup('class');
    const [before] = await joined;

    const port = server.info.port;
    await server.close();
    const again = new Promise<MessageOf<'group.state'>>((resolve) => alice.once('group.state', resolve));
    await startServer({ dataDir, port });
    // Alice resumes and asks to join again, as every client does after reconnecting.
    const after = await again;
    expect(after.epoch).toBe(before.epoch);
    expect(Buffer.from(after.groupId)).toEqual(Buffer.from(before.groupId));
    expect(Buffer.from(after.key)).toEqual(Buffer.from(before.key));
    expect(after.members.map((m) => m.user).sort()).toEqual(['alice', 'bob']);
  });
});
