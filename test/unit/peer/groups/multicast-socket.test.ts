/**
 * Real multicast on the test namespace's loopback (npm test runs inside a private network namespace
 * with a 224.0.0.0/4 route on lo): never on the machine's own interfaces.
 */
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MulticastSocket } from '../../../../peer/groups/multicast-socket.js';
import { describeLan } from '../../../harness/netns.js';

async function freeUdpPort(): Promise<number> {
  const probe = createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function openOn(port: number): Promise<MulticastSocket> {
  const socket = await MulticastSocket.open({ port, interfaceAddress: '127.0.0.1' });
  onTestFinished(() => socket.close());
  return socket;
}

describeLan('MulticastSocket (in the test network namespace)', () => {
  it('delivers a datagram sent to a group address to every member socket, the sender included', async () => {
    const port = await freeUdpPort();
    const [a, b] = [await openOn(port), await openOn(port)];
    a.join('239.192.7.7');
    b.join('239.192.7.7');
    const atA = once(a, 'datagram');
    const atB = once(b, 'datagram');
    a.send(Buffer.from('hello group'), '239.192.7.7');
    expect(((await atB)[0] as Buffer).toString()).toBe('hello group');
    expect(((await atA)[0] as Buffer).toString()).toBe('hello group');
  });
});

describe('MulticastSocket options', () => {
  it('refuses an interface that is not an IPv4 address with SALA_E_CONFIG_INVALID', async () => {
    await expect(MulticastSocket.open({ port: 0, interfaceAddress: 'eth0' })).rejects.toMatchObject({ code: 'SALA_E_CONFIG_INVALID' });
  });
});
