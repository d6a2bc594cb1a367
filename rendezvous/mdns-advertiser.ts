import { Service, type Bonjour, type Service as ServiceInstance } from 'bonjour-service';
import { createBonjour, type Logger } from '../common/index.js';

export const RENDEZVOUS_SERVICE_TYPE = 'sala-rendezvous';

/**
 * bonjour-service announces every address of every interface. A server bound to one address must
 * announce only that one, or peers dial addresses where nothing listens (a second adapter, a VPN,
 * docker0). Service objects are created and announced inside publish(), so the filter is installed
 * on the prototype once and applies only to the services registered in this map (by FQDN).
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

/**
 * Announces `_sala-rendezvous._tcp` on the LAN so peers find the server without typing an
 * address. The TXT record carries the key fingerprint and protocol version; it is only a hint —
 * peers still check the key in the handshake. `bindAddress` pins mDNS to one interface (the one the
 * server listens on) and announces only that address; without it every interface is used.
 */
export class MdnsAdvertiser {
  readonly #bonjour: Bonjour;
  readonly #service: ServiceInstance;
  readonly #fqdn: string;
  #isClosed = false;

  constructor(options: { port: number; fingerprint: string; bindAddress?: string; logger: Logger }) {
    this.#bonjour = createBonjour({
      interfaceAddress: options.bindAddress,
      onError: (err) => options.logger.warn('mdns.error', { message: String(err) }),
    });
    const name = `Sala rendezvous ${options.fingerprint.slice(0, 4)}`;
    this.#fqdn = `${name}._${RENDEZVOUS_SERVICE_TYPE}._tcp.local`;
    if (options.bindAddress !== undefined) {
      installAddressFilter();
      announcedAddresses.set(this.#fqdn, [options.bindAddress]);
    }
    this.#service = this.#bonjour.publish({
      name,
      type: RENDEZVOUS_SERVICE_TYPE,
      port: options.port,
      txt: { fp: options.fingerprint, v: '1' },
      probe: false,
    });
    this.#service.on('error', (err: unknown) => options.logger.warn('mdns.error', { message: String(err) }));
  }

  close(): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    this.#isClosed = true;
    return new Promise((resolve) => {
      this.#bonjour.unpublishAll(() => {
        announcedAddresses.delete(this.#fqdn);
        this.#bonjour.destroy();
        resolve();
      });
    });
  }
}
