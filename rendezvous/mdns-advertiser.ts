import { Bonjour, type Service } from 'bonjour-service';
import type { Logger } from '../common/index.js';

export const RENDEZVOUS_SERVICE_TYPE = 'sala-rendezvous';

/**
 * Announces `_sala-rendezvous._tcp` on the LAN so peers find the server without typing an
 * address. The TXT record carries the key fingerprint and protocol version; it is only a hint —
 * peers still check the key in the handshake. `bindAddress` pins mDNS to one interface (the one the
 * server listens on); without it every interface is used.
 */
export class MdnsAdvertiser {
  readonly #bonjour: Bonjour;
  readonly #service: Service;
  #isClosed = false;

  constructor(options: { port: number; fingerprint: string; bindAddress?: string; logger: Logger }) {
    const bindOptions = options.bindAddress === undefined ? {} : { interface: options.bindAddress, bind: '0.0.0.0' };
    this.#bonjour = new Bonjour(bindOptions as ConstructorParameters<typeof Bonjour>[0], (err: unknown) =>
      options.logger.warn('mdns.error', { message: String(err) }),
    );
    this.#service = this.#bonjour.publish({
      name: `Sala rendezvous ${options.fingerprint.slice(0, 4)}`,
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
        this.#bonjour.destroy();
        resolve();
      });
    });
  }
}
