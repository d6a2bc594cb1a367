/**
 * Which interface group chat multicasts on. The route lookup is a connected UDP socket, which sends
 * nothing, so these tests are safe anywhere.
 */
import { describe, expect, it } from 'vitest';
import { chooseMulticastInterface } from '../../../../peer/groups/multicast-interface.js';

describe('chooseMulticastInterface', () => {
  it('takes --interface when it is an IPv4 address', async () => {
    expect(await chooseMulticastInterface({ interfaceAddress: '10.1.2.3', server: { host: '127.0.0.1', port: 7420 } })).toBe('10.1.2.3');
  });

  it('has none for an IPv6 --interface (group chat is IPv4 multicast)', async () => {
    expect(await chooseMulticastInterface({ interfaceAddress: '::1', server: { host: '127.0.0.1', port: 7420 } })).toBeUndefined();
  });

  it('uses the address that reaches the server: loopback for a server on 127.0.0.1', async () => {
    expect(await chooseMulticastInterface({ server: { host: '127.0.0.1', port: 7420 } })).toBe('127.0.0.1');
  });

  it('has none when the server cannot be routed to', async () => {
    expect(await chooseMulticastInterface({ server: { host: 'no-such-host.invalid', port: 7420 } })).toBeUndefined();
  });
});
