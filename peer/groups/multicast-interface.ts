import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { isIPv4 } from 'node:net';
import type { Logger } from '../../common/index.js';

/**
 * Which interface group chat multicasts on. Never the OS default: on a laptop with VPN, Hyper-V or
 * WSL adapters the default is often the wrong one, and on Windows a wrong choice fails silently.
 *
 * - `--interface A` (an IPv4 address) wins: the user chose the LAN.
 * - Otherwise the interface this machine would use to reach the rendezvous server: the server is on
 *   the classroom's LAN, so the address that reaches it is ours on that LAN. Asked of the kernel's
 *   routing table with a connected UDP socket, which sends nothing. A server on 127.0.0.1 (the demo,
 *   everything on one computer) gives 127.0.0.1: multicast stays on the loopback interface.
 * - Nothing usable (an IPv6-only route, a failed lookup): undefined, and groups use direct links.
 */
export async function chooseMulticastInterface(options: {
  interfaceAddress?: string | undefined;
  server: { host: string; port: number };
  logger?: Logger | undefined;
}): Promise<string | undefined> {
  if (options.interfaceAddress !== undefined) return isIPv4(options.interfaceAddress) ? options.interfaceAddress : undefined;
  const local = await localAddressTowards(options.server.host, options.server.port);
  if (local === undefined || !isIPv4(local)) {
    options.logger?.warn('group.no_multicast_interface', { server: options.server.host });
    return undefined;
  }
  return local;
}

/** The local address the kernel would send from to reach host:port (a UDP connect: no packet is sent). */
async function localAddressTowards(host: string, port: number): Promise<string | undefined> {
  const socket = createSocket('udp4');
  socket.on('error', () => undefined);
  try {
    socket.connect(port, host);
    await Promise.race([
      once(socket, 'connect'),
      once(socket, 'error').then(([err]) => {
        throw err;
      }),
    ]);
    return socket.address().address;
  } catch {
    return undefined;
  } finally {
    socket.close();
  }
}
