import { Bonjour, Service, type Service as ServiceInstance } from 'bonjour-service';

/**
 * The rendezvous server announces `_sala-rendezvous._tcp`. It lives here because both sides need
 * it and peer/ and rendezvous/ meet only through common/.
 */
export const RENDEZVOUS_SERVICE_TYPE = 'sala-rendezvous';

/** TXT values longer than this are not a user name, fingerprint or version: ignored unread. */
export const MAX_TXT_VALUE_CHARS = 64;

/**
 * The string TXT value `key` of an untrusted mDNS answer (bonjour-service decodes TXT into an
 * object), or undefined when it is missing, not a string or longer than MAX_TXT_VALUE_CHARS.
 * Never throws; of a flood of keys only `key` is read.
 */
export function readTxtString(txt: unknown, key: string): string | undefined {
  if (typeof txt !== 'object' || txt === null) return undefined;
  const value: unknown = Object.hasOwn(txt, key) ? (txt as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' && value.length <= MAX_TXT_VALUE_CHARS ? value : undefined;
}

/**
 * A bonjour-service instance, optionally pinned to one interface. `interface` alone is not enough:
 * multicast-dns then binds its socket to that unicast address, and on Linux such a socket never
 * receives datagrams sent to the mDNS group; so it binds the wildcard and lets `interface` choose
 * the group membership and the outgoing link (Windows with several adapters needs the same choice).
 * The two options are multicast-dns's, passed through by bonjour-service but missing from its types.
 */
export function createBonjour(options: {
  interfaceAddress?: string | undefined;
  onError: (err: unknown) => void;
  /** Undecodable packets and transient send errors: worth a debug line, never a user's attention. */
  onWarning?: ((err: unknown) => void) | undefined;
}): Bonjour {
  const socketOptions = options.interfaceAddress === undefined ? {} : { interface: options.interfaceAddress, bind: '0.0.0.0' };
  const bonjour = new Bonjour(socketOptions as ConstructorParameters<typeof Bonjour>[0], options.onError);
  // multicast-dns emits 'error' (EACCES, EADDRINUSE on port 5353) and 'warning' (anything else) on
  // itself, and bonjour-service listens to neither: unheard, an 'error' would crash the program.
  const mdns = (bonjour as unknown as { server: { mdns: NodeJS.EventEmitter } }).server.mdns;
  mdns.on('error', options.onError);
  mdns.on('warning', options.onWarning ?? (() => undefined));
  return bonjour;
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
