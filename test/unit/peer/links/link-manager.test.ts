import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { generateSigningKeyPair, initCrypto, SalaError, type KeyPair, type WireMessage } from '../../../../common/index.js';
import { LinkManager, type PeerLink } from '../../../../peer/links/link-manager.js';
import { rejectsWithSalaError } from '../../../helpers/errors.js';
import { credentials, device, type Device } from '../../../helpers/tickets.js';

beforeAll(initCrypto);

async function managerFor(server: KeyPair, me: Device, options: { maxLinksPerIp?: number } = {}): Promise<LinkManager> {
  const manager = await LinkManager.listen({
    credentials: credentials(server, me),
    mySessionId: () => me.sessionId,
    host: '127.0.0.1',
    ...options,
  });
  onTestFinished(() => manager.close());
  return manager;
}

const at = (manager: LinkManager): { host: string; port: number }[] => [{ host: '127.0.0.1', port: manager.port }];

describe('LinkManager', () => {
  it('opens a link both sides see, and messages flow over it', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const bob = device(server, 'bob', { sessionId: 'b-1' });
    const [aliceLinks, bobLinks] = [await managerFor(server, alice), await managerFor(server, bob)];
    const bobSaw = once(bobLinks, 'link.up') as Promise<[PeerLink]>;
    const link = await aliceLinks.connect('bob', 'b-1', at(bobLinks));
    const [incoming] = await bobSaw;
    expect(link.peer.user).toBe('bob');
    expect(incoming.peer.user).toBe('alice');
    const got = once(incoming.messages, 'message') as Promise<[WireMessage]>;
    link.messages.send({ type: 'error', code: 'SALA_E_BUSY', message: 'hello over the link' });
    expect((await got)[0]).toMatchObject({ message: 'hello over the link' });
  });

  it('reuses the link it has instead of dialling again', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const bob = device(server, 'bob', { sessionId: 'b-1' });
    const [aliceLinks, bobLinks] = [await managerFor(server, alice), await managerFor(server, bob)];
    const first = await aliceLinks.connect('bob', 'b-1', at(bobLinks));
    expect(await aliceLinks.connect('bob', 'b-1', at(bobLinks))).toBe(first);
  });

  it('ends up with one and the same link on both sides when both dial at once', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const bob = device(server, 'bob', { sessionId: 'b-1' });
    const [aliceLinks, bobLinks] = [await managerFor(server, alice), await managerFor(server, bob)];
    await Promise.all([aliceLinks.connect('bob', 'b-1', at(bobLinks)), bobLinks.connect('alice', 'a-1', at(aliceLinks))]);
    const aliceKept = aliceLinks.get('b-1');
    // Each side registers the links as they complete; the losing one is closed on both sides.
    await vi.waitFor(() => expect(bobLinks.get('a-1')?.isInitiator).toBe(false), { timeout: 2_000 });
    expect(aliceLinks.links()).toHaveLength(1);
    expect(bobLinks.links()).toHaveLength(1);
    expect(Buffer.from(aliceKept!.channel.handshakeHash).equals(Buffer.from(bobLinks.get('a-1')!.channel.handshakeHash))).toBe(true);
    // The kept link is the one dialled by the smaller session id ('a-1' < 'b-1'): alice's.
    expect(aliceKept!.isInitiator).toBe(true);
  });

  it('tries the next announced address when one does not answer', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const bob = device(server, 'bob', { sessionId: 'b-1' });
    const [aliceLinks, bobLinks] = [await managerFor(server, alice), await managerFor(server, bob)];
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const link = await aliceLinks.connect('bob', 'b-1', [{ host: '127.0.0.1', port: deadPort }, ...at(bobLinks)]);
    expect(link.peer.user).toBe('bob');
  });

  it('stops at an address where someone else proves their identity (SALA_E_TICKET_INVALID)', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const mallory = device(server, 'mallory', { sessionId: 'm-1' });
    const [aliceLinks, malloryLinks] = [await managerFor(server, alice), await managerFor(server, mallory)];
    await rejectsWithSalaError(aliceLinks.connect('bob', 'b-1', at(malloryLinks)), 'SALA_E_TICKET_INVALID');
    expect(aliceLinks.links()).toHaveLength(0);
  });

  it('drops the links of a revoked session and reports why', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice', { sessionId: 'a-1' });
    const bob = device(server, 'bob', { sessionId: 'b-1' });
    const [aliceLinks, bobLinks] = [await managerFor(server, alice), await managerFor(server, bob)];
    await aliceLinks.connect('bob', 'b-1', at(bobLinks));
    const down = once(aliceLinks, 'link.down') as Promise<[PeerLink, SalaError | undefined]>;
    aliceLinks.drop('b-1', new SalaError('SALA_E_TICKET_INVALID', 'revoked by the server'));
    const [, why] = await down;
    expect(why?.code).toBe('SALA_E_TICKET_INVALID');
    expect(aliceLinks.get('b-1')).toBeUndefined();
  });

  it('refuses incoming connections beyond the per-address cap before any handshake', async () => {
    const server = generateSigningKeyPair();
    const bobLinks = await managerFor(server, device(server, 'bob', { sessionId: 'b-1' }), { maxLinksPerIp: 2 });
    const open = [connect({ host: '127.0.0.1', port: bobLinks.port }), connect({ host: '127.0.0.1', port: bobLinks.port })];
    for (const s of open) s.on('error', () => undefined);
    await Promise.all(open.map((s) => once(s, 'connect')));
    await new Promise((r) => setTimeout(r, 50));
    const third = connect({ host: '127.0.0.1', port: bobLinks.port });
    third.on('error', () => undefined);
    await once(third, 'close');
    for (const s of open) s.destroy();
  });
});
