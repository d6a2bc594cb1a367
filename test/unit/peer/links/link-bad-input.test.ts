/**
 * Bad input at a peer's link listener: no ticket, garbage before and after the handshake. Each is
 * refused for that connection only; the peer's other links keep working.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectSecure, encodeFrame, generateIdentity, generateSigningKeyPair, initCrypto, type KeyPair } from '../../../../common/index.js';
import { dialLink } from '../../../../peer/links/link-handshake.js';
import { LinkManager, type PeerLink } from '../../../../peer/links/link-manager.js';
import { credentials, device, type Device } from '../../../helpers/tickets.js';

beforeAll(initCrypto);

async function managerFor(server: KeyPair, me: Device): Promise<LinkManager> {
  const manager = await LinkManager.listen({ credentials: credentials(server, me), mySessionId: () => me.sessionId, host: '127.0.0.1' });
  onTestFinished(() => manager.close());
  return manager;
}

/** A working link from carol to bob, to show that bob's other links are unaffected. */
async function witness(server: KeyPair, bobLinks: LinkManager, bob: Device): Promise<{ carolSide: PeerLink; bobSide: PeerLink }> {
  const carolLinks = await managerFor(server, device(server, 'carol'));
  const up = once(bobLinks, 'link.up') as Promise<[PeerLink]>;
  const carolSide = await carolLinks.connect('bob', bob.sessionId, [{ host: '127.0.0.1', port: bobLinks.port }]);
  return { carolSide, bobSide: (await up)[0] };
}

async function stillWorks(link: { carolSide: PeerLink; bobSide: PeerLink }): Promise<void> {
  const got = once(link.bobSide.messages, 'message');
  link.carolSide.messages.send({ type: 'chat.ack', id: 'still-linked' });
  expect((await got)[0]).toMatchObject({ id: 'still-linked' });
}

describe('a link listener given bad input', () => {
  it('refuses a handshake that carries no ticket, and links nobody', async () => {
    const server = generateSigningKeyPair();
    const bob = device(server, 'bob');
    const bobLinks = await managerFor(server, bob);
    const ok = await witness(server, bobLinks, bob);
    let linked = 0;
    bobLinks.on('link.up', () => linked++);
    // A Sala-speaking program with a device key but no session: completes Noise, presents nothing.
    const channel = await connectSecure({ host: '127.0.0.1', port: bobLinks.port, purpose: 'link', staticKeyPair: generateIdentity().dh });
    channel.on('error', () => undefined);
    channel.resume();
    // Bob hangs up after reading our (empty) msg 3: for us, a truncated channel.
    await new Promise((resolve) => channel.once('close', resolve));
    expect(linked).toBe(0);
    await stillWorks(ok);
  });

  it('closes a connection that sends garbage instead of a handshake', async () => {
    const server = generateSigningKeyPair();
    const bob = device(server, 'bob');
    const bobLinks = await managerFor(server, bob);
    const ok = await witness(server, bobLinks, bob);
    const socket = connect({ host: '127.0.0.1', port: bobLinks.port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: bob\r\n\r\n');
    await once(socket, 'close');
    await stillWorks(ok);
  });

  it('closes a link whose peer sends an undecodable message after a valid handshake', async () => {
    const server = generateSigningKeyPair();
    const bob = device(server, 'bob');
    const bobLinks = await managerFor(server, bob);
    const ok = await witness(server, bobLinks, bob);
    const down = new Promise<string | undefined>((resolve) => bobLinks.on('link.down', (link, error) => link.peer.user === 'alice' && resolve(error?.code)));
    const { channel } = await dialLink({ host: '127.0.0.1', port: bobLinks.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) });
    channel.on('error', () => undefined);
    channel.write(Buffer.from([0xc1, 0xff, 0x00])); // not MessagePack
    expect(await down).toMatch(/^SALA_E_PROTOCOL_/);
    await stillWorks(ok);
  });

  it('closes a link whose peer sends a message of an unknown type', async () => {
    const server = generateSigningKeyPair();
    const bob = device(server, 'bob');
    const bobLinks = await managerFor(server, bob);
    const down = new Promise<string | undefined>((resolve) => bobLinks.on('link.down', (_link, error) => resolve(error?.code)));
    const { channel } = await dialLink({ host: '127.0.0.1', port: bobLinks.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) });
    channel.on('error', () => undefined);
    channel.write(encodeFrame(Buffer.from([0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa4, 0x65, 0x76, 0x69, 0x6c])).subarray(4)); // {type: 'evil'}
    expect(await down).toBe('SALA_E_PROTOCOL_UNKNOWN_TYPE');
  });
});
