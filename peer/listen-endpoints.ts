import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIP } from 'node:net';
import { isLoopbackHost, MAX_ENDPOINTS, SalaError, type Endpoint } from '../common/index.js';

/**
 * The addresses to announce (to the server's directory) for a link listener bound to `host`:port.
 * A listener on a specific address announces just that one. One on all interfaces announces the
 * IPv4 address of each interface that is up and not loopback, skipping link-local addresses
 * (169.254/16 answers only on its own link and changes at will) — or only `interfaceAddress` when
 * the user chose the LAN interface with --interface (a laptop with VPN, Hyper-V and WSL adapters
 * should not hand out addresses nobody on the LAN can reach).
 */
export function endpointsToAnnounce(
  host: string,
  port: number,
  options: { interfaceAddress?: string | undefined; interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]> } = {},
): Endpoint[] {
  if (!isWildcard(host)) return [{ host, port }];
  if (options.interfaceAddress !== undefined) return [{ host: options.interfaceAddress, port }];
  const found: Endpoint[] = [];
  for (const infos of Object.values(options.interfaces ?? networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.internal || info.family !== 'IPv4' || info.address.startsWith('169.254.')) continue;
      if (!found.some((e) => e.host === info.address)) found.push({ host: info.address, port });
    }
  }
  // A machine with no network at all still reaches itself (two peers on one laptop).
  if (found.length === 0) found.push({ host: '127.0.0.1', port });
  return found.slice(0, MAX_ENDPOINTS);
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * Checks `--interface A`: an IP address of one of this machine's interfaces. Returns it, or fails
 * with the list of addresses the user could have meant.
 */
export function checkInterfaceAddress(address: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  const all = Object.entries(interfaces).flatMap(([name, infos]) => (infos ?? []).map((info) => ({ name, address: info.address })));
  if (isIP(address) !== 0 && all.some((a) => a.address === address)) return address;
  const choices = all.filter((a) => isIP(a.address) === 4).map((a) => `${a.address} (${a.name})`);
  throw new SalaError(
    'SALA_E_CONFIG_INVALID',
    `--interface must be an IP address of this computer; "${address.slice(0, 64)}" is not. Choose one of: ${choices.join(', ') || 'none found'}.`,
  );
}

/** mDNS on loopback reaches nobody else and would only add traffic: it is used only on a real LAN. */
export function isMdnsUseful(listenHost: string, interfaceAddress: string | undefined): boolean {
  if (interfaceAddress !== undefined) return !isLoopbackHost(interfaceAddress);
  return !isLoopbackHost(listenHost);
}
