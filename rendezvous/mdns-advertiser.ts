import type { Bonjour, Service as ServiceInstance } from 'bonjour-service';
import { createBonjour, releaseAnnouncedAddresses, RENDEZVOUS_SERVICE_TYPE, restrictAnnouncedAddresses, type Logger } from '../common/index.js';

/** Defined in common/ so peers can browse for it; re-exported for existing importers. */
export { RENDEZVOUS_SERVICE_TYPE };

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
    if (options.bindAddress !== undefined) restrictAnnouncedAddresses(this.#fqdn, [options.bindAddress]);
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
        releaseAnnouncedAddresses(this.#fqdn);
        this.#bonjour.destroy();
        resolve();
      });
    });
  }
}
