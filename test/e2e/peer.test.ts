/**
 * The Peer library against a real rendezvous server on 127.0.0.1, real direct links, real NeDB:
 * presence, 1:1 chat with acks and the outbox, server outages, revocation, and the bad inputs of
 * issue 5 that do not need a LAN (those are in peer-lan.test.ts).
 */

import { describe, expect, it, vi } from 'vitest';
import { MAX_CHAT_TEXT_BYTES, type SalaError } from '../../common/index.js';
import { AdminClient } from '../../rendezvous/admin/admin-client.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { rejectsWithSalaError } from '../helpers/errors.js';
import { nextEvent, startPeer } from '../helpers/peers.js';
import { FAST_HASHING, register, startServer, tempDir } from '../helpers/rendezvous.js';


const next = nextEvent;

async function serverWith(...users: string[]): Promise<RendezvousServer> {
  const server = await startServer();
  for (const user of users) await register(server, user);
  return server;
}

interface ExportedEvent {
  event: string;
  user: string;
  detail: string;
}

async function storedEvents(server: RendezvousServer, user: string): Promise<ExportedEvent[]> {
  const admin = await AdminClient.fromDataDir(server.dataDir);
  return JSON.parse(await admin.exportLogs({ format: 'json', user })) as ExportedEvent[];
}

describe('Peer on loopback', () => {

  it('logs in, listens, and lists the other users with the directory as source', async () => {
    const server = await serverWith('alice', 'bob', 'carol');
    const alice = await startPeer(server, 'Alice');
    expect(alice.user).toBe('alice');
    expect(alice.serverFingerprint).toBe(server.info.fingerprint);
    expect(alice.listen.host).toBe('127.0.0.1');
    const bobOnline = next(alice, 'peer.online', ({ user }) => user === 'bob');
    const bob = await startPeer(server, 'bob');
    await bobOnline;
    await startPeer(server, 'carol');
    await vi.waitFor(() => expect(alice.peers().map((p) => p.user)).toEqual(['bob', 'carol']));
    const bobEntry = alice.peers().find((p) => p.user === 'bob');
    expect(bobEntry).toEqual({ user: 'bob', online: true, addresses: [`127.0.0.1:${bob.listen.port}`], via: ['directory'] });
    expect(alice.peers().some((p) => p.user === 'alice')).toBe(false);
  });

  it('chats both ways with the same id on both ends, sent then delivered, and keeps history on both sides', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await next(alice, 'peer.online').catch(() => undefined);
    const received = next(bob, 'message');
    const sent = next(alice, 'sent');
    const delivered = next(alice, 'delivered');
    const { id } = await alice.send('bob', 'hello bob');
    expect((await sent)[0]).toMatchObject({ id, to: 'bob' });
    expect((await received)[0]).toMatchObject({ id, from: 'alice', text: 'hello bob' });
    expect((await delivered)[0]).toEqual({ id, to: 'bob' });

    const back = next(alice, 'message');
    const reply = await bob.send('alice', 'hi alice');
    expect((await back)[0]).toMatchObject({ id: reply.id, from: 'bob', text: 'hi alice' });

    await vi.waitFor(async () => {
      expect((await alice.history('bob')).map((m) => [m.from, m.text, m.status])).toEqual([
        ['alice', 'hello bob', 'delivered'],
        ['bob', 'hi alice', 'received'],
      ]);
    });
    expect((await bob.history('alice')).map((m) => m.id)).toEqual([id, reply.id]);
  });

  it('queues messages for a user who is not online and delivers them once, in order, when they log in', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const first = await alice.send('bob', 'one');
    expect(first.status).toBe('queued');
    await alice.send('bob', 'two');
    await alice.send('bob', 'three');
    const bob = await startPeer(server, 'bob', { isMdnsEnabled: false });
    const texts: string[] = [];
    bob.on('message', (m) => texts.push(m.text));
    await vi.waitFor(() => expect(texts).toEqual(['one', 'two', 'three']), { timeout: 8_000 });
    await vi.waitFor(async () => expect((await alice.history('bob')).every((m) => m.status === 'delivered')).toBe(true));
    expect(texts).toEqual(['one', 'two', 'three']);
  });

  it('delivers messages queued before a restart of the sender, read back from its history', async () => {
    const server = await serverWith('alice', 'bob');
    const dataDir = tempDir();
    const alice = await startPeer(server, 'alice', { dataDir });
    const { id } = await alice.send('bob', 'waited across a restart');
    await alice.quit();
    const again = await startPeer(server, 'alice', { dataDir });
    const bob = await startPeer(server, 'bob');
    const [message] = await next(bob, 'message');
    expect(message).toMatchObject({ id, text: 'waited across a restart' });
    await next(again, 'delivered', (d) => d.id === id);
  });

  it('tells the others within seconds when a peer quits, and frees its session slot at once', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
    const offline = next(alice, 'peer.offline', ({ user }) => user === 'bob');
    await bob.quit();
    await offline;
    expect(server.sessions.forUser('bob')).toEqual([]);
    expect(alice.peers().find((p) => p.user === 'bob')).toMatchObject({ online: false, via: [] });
  });

  it('keeps chatting over its links while the server is down, and resumes the session when it is back', async () => {
    const dataDir = tempDir();
    const server = await startServer({ dataDir });
    await register(server, 'alice');
    await register(server, 'bob');
    const port = server.info.port;
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await alice.send('bob', 'before');
    await next(bob, 'message');
    const aliceSessionId = alice.sessionId;

    const down = next(alice, 'server.disconnected');
    await server.close();
    await down;
    const during = next(bob, 'message', (m) => m.text === 'during the outage');
    await alice.send('bob', 'during the outage');
    await during;

    const up = next(alice, 'server.reconnected', undefined, 15_000);
    const restarted = await RendezvousServer.start({ dataDir, port, adminPort: 0, isMdnsEnabled: false, passwordHashing: FAST_HASHING });
    try {
      await up;
      expect(alice.sessionId).toBe(aliceSessionId);
      expect(restarted.sessions.get(aliceSessionId)).toBeDefined();
      const after = next(alice, 'message', (m) => m.text === 'after');
      await bob.send('alice', 'after');
      await after;
      // The activity of the outage reached the server once it was back: nothing was lost.
      await vi.waitFor(async () => {
        const events = await storedEvents(restarted, 'alice');
        expect(events.filter((e) => e.event === 'message.sent').length).toBe(2);
      }, { timeout: 8_000 });
    } finally {
      await alice.close();
      await bob.close();
      await restarted.close();
    }
  });

  it('ships link and message events to the server log as metadata, never the text', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    const got = next(bob, 'message');
    await alice.send('bob', 'a secret text');
    await got;
    await vi.waitFor(async () => {
      const aliceEvents = (await storedEvents(server, 'alice')).map((e) => e.event);
      const bobEvents = (await storedEvents(server, 'bob')).map((e) => e.event);
      expect(aliceEvents).toEqual(expect.arrayContaining(['login', 'link.up', 'message.sent']));
      expect(bobEvents).toEqual(expect.arrayContaining(['login', 'link.up', 'message.received']));
    }, { timeout: 8_000 });
    const all = JSON.stringify([...(await storedEvents(server, 'alice')), ...(await storedEvents(server, 'bob'))]);
    expect(all).not.toContain('a secret text');
  });

  it('drops the links of a kicked session on every peer, and the kicked peer gets SALA_E_KICKED', async () => {
    const server = await serverWith('alice', 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob');
    await alice.send('bob', 'linked');
    await next(bob, 'message');
    const linkDown = next(alice, 'link.down', (l) => l.user === 'bob');
    const kicked = next(bob, 'error');
    const admin = await AdminClient.fromDataDir(server.dataDir);
    await admin.kick('bob');
    expect((await kicked)[0].code).toBe('SALA_E_KICKED');
    await linkDown;
  });

  it('refuses messages over 64 KiB and to names that are not users, with clear codes', async () => {
    const server = await serverWith('alice');
    const alice = await startPeer(server, 'alice');
    expect((await rejectsWithSalaError(alice.send('bob', 'x'.repeat(MAX_CHAT_TEXT_BYTES + 1)))).code).toBe('SALA_E_MESSAGE_TOO_LARGE');
    expect((await rejectsWithSalaError(alice.send('not a name!', 'hi'))).code).toBe('SALA_E_UNKNOWN_USER');
    expect((await rejectsWithSalaError(alice.send('alice', 'me'))).code).toBe('SALA_E_UNKNOWN_USER');
    // Exactly at the limit is fine.
    const { status } = await alice.send('bob', 'é'.repeat(MAX_CHAT_TEXT_BYTES / 2));
    expect(status).toBe('queued');
  });

  it('refuses a second peer for the same user on the same data dir with SALA_E_PEER_RUNNING', async () => {
    const server = await serverWith('alice');
    const dataDir = tempDir();
    await startPeer(server, 'alice', { dataDir });
    const error = await rejectsWithSalaError(startPeer(server, 'alice', { dataDir }));
    expect(error.code).toBe('SALA_E_PEER_RUNNING');
  });

  it('reports a wrong password as SALA_E_AUTH_FAILED and leaves nothing running', async () => {
    const server = await serverWith('alice');
    const dataDir = tempDir();
    const error = await rejectsWithSalaError(startPeer(server, 'alice', { dataDir, password: 'wrong password' }));
    expect(error.code).toBe('SALA_E_AUTH_FAILED');
    // The lock was released: a correct login on the same data dir works.
    await startPeer(server, 'alice', { dataDir });
  });

  it('needs --server when mDNS is off', async () => {
    const error = await rejectsWithSalaError(startPeer({ port: 1 }, 'alice', { server: undefined }));
    expect((error as SalaError).code).toBe('SALA_E_CONFIG_INVALID');
  });
});

