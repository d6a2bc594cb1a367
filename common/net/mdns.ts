import { Bonjour } from 'bonjour-service';

/**
 * A bonjour-service instance, optionally pinned to one interface. `interface` alone is not enough:
 * multicast-dns then binds its socket to that unicast address, and on Linux such a socket never
 * receives datagrams sent to the mDNS group; so it binds the wildcard and lets `interface` choose
 * the group membership and the outgoing link (Windows with several adapters needs the same choice).
 * The two options are multicast-dns's, passed through by bonjour-service but missing from its types.
 */
export function createBonjour(options: { interfaceAddress?: string | undefined; onError: (err: unknown) => void }): Bonjour {
  const socketOptions = options.interfaceAddress === undefined ? {} : { interface: options.interfaceAddress, bind: '0.0.0.0' };
  return new Bonjour(socketOptions as ConstructorParameters<typeof Bonjour>[0], options.onError);
}
