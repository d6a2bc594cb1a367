import { Bonjour, Service, type Service as ServiceInstance } from 'bonjour-service';

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

/**
 * bonjour-service announces every address of every interface. A service bound to one address must
 * announce only that one, or others dial addresses where nothing listens (a second adapter, a VPN,
 * docker0). Service objects are created and announced inside publish(), so the filter wraps
 * Service.prototype.records once and applies only to the FQDNs registered here.
 */
const announcedAddresses = new Map<string, readonly string[]>();
let isFilterInstalled = false;

interface AddressRecord {
  type: string;
  data?: unknown;
}

function installAddressFilter(): void {
  if (isFilterInstalled) return;
  isFilterInstalled = true;
  const prototype = Service.prototype as unknown as { records(this: ServiceInstance): AddressRecord[] };
  const original = prototype.records;
  prototype.records = function records(this: ServiceInstance): AddressRecord[] {
    const all = original.call(this);
    const allowed = announcedAddresses.get(this.fqdn);
    if (allowed === undefined) return all;
    return all.filter((r) => (r.type !== 'A' && r.type !== 'AAAA') || allowed.includes(String(r.data)));
  };
}

/** Announce only `addresses` for the service instance `fqdn` (as bonjour-service spells it). */
export function restrictAnnouncedAddresses(fqdn: string, addresses: readonly string[]): void {
  installAddressFilter();
  announcedAddresses.set(fqdn, addresses);
}

export function releaseAnnouncedAddresses(fqdn: string): void {
  announcedAddresses.delete(fqdn);
}
