import { isIP } from 'node:net';

/**
 * Whether `host` names this machine's loopback: `localhost`, 127.0.0.0/8 or ::1. Such an address
 * cannot be the source of a packet from the LAN (the kernel drops it on other interfaces), which is
 * what the login throttle, mDNS and endpoint publishing rely on.
 */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.');
  return family === 6 && (host === '::1' || host.toLowerCase() === '0:0:0:0:0:0:0:1');
}

/**
 * Whether an address heard from another host (an mDNS answer) is worth dialling: a unicast IP of
 * another machine. Refused: the unspecified and "this network" addresses (0.0.0.0/8, ::), loopback
 * (which would make us dial our own machine's ports on a stranger's word), multicast, broadcast and
 * reserved (224.0.0.0 and up, ff00::/8), and IPv6 link-local (fe80::/10), which cannot be dialled
 * without a zone that an answer cannot carry.
 */
export function isDialableAddress(address: unknown): address is string {
  if (typeof address !== 'string') return false;
  const family = isIP(address);
  if (family === 4) {
    const firstOctet = Number(address.slice(0, address.indexOf('.')));
    return firstOctet !== 0 && firstOctet !== 127 && firstOctet < 224;
  }
  if (family !== 6) return false;
  const lower = address.toLowerCase();
  if (lower === '::' || isLoopbackHost(lower) || lower.startsWith('ff') || /^fe[89ab]/.test(lower)) return false;
  // IPv4-mapped (::ffff:a.b.c.d): judged as the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped?.[1] === undefined || isDialableAddress(mapped[1]);
}
