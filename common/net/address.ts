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
