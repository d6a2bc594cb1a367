import { EventEmitter } from 'node:events';
import type { Bonjour, Browser, Service } from 'bonjour-service';
import {
  createBonjour,
  normalizeUserName,
  parseFingerprint,
  releaseAnnouncedAddresses,
  restrictAnnouncedAddresses,
  SalaError,
  silentLogger,
  type Logger,
} from '../../common/index.js';
import {
  acceptRecord,
  createRecordStore,
  listPeers,
  removeRecord,
  sweepRecords,
  touchRecord,
  type DiscoveredPeer,
  type RecordStore,
} from './discovery-records.js';

/** CONTRACT.md: the mDNS service type of a peer is `_sala._tcp`. */
export const PEER_SERVICE_TYPE = 'sala';
const PEER_SERVICE_SUFFIX = `._${PEER_SERVICE_TYPE}._tcp.local`;
/** An entry not re-seen for this long is dropped (bonjour-service's SRV/TXT/A records live 120 s). */
export const DEFAULT_PEER_TTL_MS = 120_000;

export interface PeerDiscoveryEvents {
  'peer.seen': [peer: DiscoveredPeer];
  'peer.gone': [peer: { user: string; fingerprint: string }];
  warning: [warning: { message: string }];
}

export interface PeerDiscoveryOptions {
  readonly user: string;
  readonly deviceFingerprint: string;
  /** The port this peer's link listener accepts on. */
  readonly port: number;
  /** Pins mDNS to this interface and announces only this address. */
  readonly interfaceAddress?: string | undefined;
  /** False for `--no-mdns`: nothing goes on the network and peers() stays empty. */
  readonly isMdnsEnabled: boolean;
  readonly logger?: Logger | undefined;
  readonly maxRecords?: number | undefined;
  readonly maxAddressesPerRecord?: number | undefined;
  /** Entries not re-seen within this time are dropped; default 2 minutes. */
  readonly ttlMs?: number | undefined;
}

interface MdnsPacket {
  readonly answers?: readonly { type?: unknown; name?: unknown; data?: unknown; ttl?: unknown }[];
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `${name} must be a positive integer, got ${String(value)}.`);
  }
  return value;
}

/** Services bonjour's Browser may hold before it is replaced by a fresh one (see #sweep). */
export const MAX_BROWSED_SERVICES = 1_024;

/**
 * Announces this peer as `_sala._tcp` and keeps a bounded table of the other peers announced on
 * the LAN (SECURITY.md H5). Entries are hints for dialling: identity comes from the link handshake.
 */
export class PeerDiscovery extends EventEmitter<PeerDiscoveryEvents> {
  readonly #user: string;
  readonly #fingerprint: string;
  readonly #port: number;
  readonly #interfaceAddress: string | undefined;
  readonly #isMdnsEnabled: boolean;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #store: RecordStore;
  readonly #serviceName: string;
  #bonjour: Bonjour | undefined;
  #browser: Browser | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #fqdn: string | undefined;
  #isStarted = false;
  #isClosed = false;
  #browserResets = 0;

  constructor(options: PeerDiscoveryOptions) {
    super();
    this.#user = normalizeUserName(options.user);
    this.#fingerprint = parseFingerprint(options.deviceFingerprint);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535) {
      throw new SalaError('SALA_E_CONFIG_INVALID', `port must be 1–65535, got ${String(options.port)}.`);
    }
    this.#port = options.port;
    this.#interfaceAddress = options.interfaceAddress;
    this.#isMdnsEnabled = options.isMdnsEnabled;
    this.#logger = options.logger ?? silentLogger;
    this.#ttlMs = positiveInteger(options.ttlMs, 'ttlMs', DEFAULT_PEER_TTL_MS);
    this.#store = createRecordStore({
      ownFingerprint: this.#fingerprint,
      maxRecords: positiveInteger(options.maxRecords, 'maxRecords', 256),
      maxAddressesPerRecord: positiveInteger(options.maxAddressesPerRecord, 'maxAddressesPerRecord', 8),
    });
    this.#serviceName = `sala-${this.#user}-${this.#fingerprint.replace(/-/g, '').slice(0, 8)}`;
  }

  /** The instance name announced, `sala-<user>-<first 8 fingerprint characters>`. */
  get serviceName(): string {
    return this.#serviceName;
  }

  start(): void {
    if (this.#isClosed) throw new SalaError('SALA_E_CONFIG_INVALID', 'PeerDiscovery was closed; create a new one.');
    if (this.#isStarted) return;
    this.#isStarted = true;
    if (!this.#isMdnsEnabled) return;

    const bonjour = createBonjour({
      interfaceAddress: this.#interfaceAddress,
      onError: (err) => this.#warn(`mDNS error: ${err instanceof Error ? err.message : String(err)}`),
    });
    this.#bonjour = bonjour;
    this.#fqdn = `${this.#serviceName}${PEER_SERVICE_SUFFIX}`;
    if (this.#interfaceAddress !== undefined) restrictAnnouncedAddresses(this.#fqdn, [this.#interfaceAddress]);
    const service = bonjour.publish({
      name: this.#serviceName,
      type: PEER_SERVICE_TYPE,
      port: this.#port,
      txt: { u: this.#user, fp: this.#fingerprint, v: '1' },
      probe: false,
    });
    service.on('error', (err: unknown) => this.#warn(`mDNS publish error: ${String(err)}`));

    this.#browser = this.#browse(bonjour);
    // bonjour's Browser reports a service once; later answers for it (to our periodic queries) only
    // show in the raw packets, which is where the entry's TTL is refreshed.
    const mdns = (bonjour as unknown as { server: { mdns: EventEmitter } }).server.mdns;
    mdns.on('response', (packet: MdnsPacket) => this.#onResponse(packet));

    // Query a few times per TTL so live peers answer before their entry expires.
    const periodMs = Math.max(1_000, Math.floor(this.#ttlMs / 4));
    this.#sweepTimer = setInterval(() => this.#sweep(), periodMs);
    this.#sweepTimer.unref();
  }

  /** Services bonjour's Browser holds now (bounded: see #sweep). For tests and diagnostics. */
  get browsedServiceCount(): number {
    return this.#browser?.services.length ?? 0;
  }

  /** How often the Browser was replaced for holding too many services. */
  get browserResets(): number {
    return this.#browserResets;
  }

  peers(): DiscoveredPeer[] {
    return this.#isMdnsEnabled ? listPeers(this.#store) : [];
  }

  close(): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    this.#isClosed = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#browser?.stop();
    const bonjour = this.#bonjour;
    this.#bonjour = undefined;
    if (bonjour === undefined) return Promise.resolve();
    const fqdn = this.#fqdn;
    return new Promise((resolve) => {
      // unpublishAll sends the goodbye (TTL 0) that lets other peers drop us at once.
      bonjour.unpublishAll(() => {
        if (fqdn !== undefined) releaseAnnouncedAddresses(fqdn);
        bonjour.destroy(() => resolve());
      });
    });
  }

  #accept(service: Service): void {
    if (this.#isClosed) return;
    const result = acceptRecord(this.#store, service);
    switch (result.kind) {
      case 'added':
      case 'updated':
        this.#logger.debug('discovery.peer_seen', { user: result.peer.user, peer: shortId(result.peer.fingerprint) });
        this.emit('peer.seen', result.peer);
        return;
      case 'refreshed':
      case 'own':
        return;
      case 'rejected':
        this.#logger.debug('discovery.record_rejected', { reason: result.reason });
        return;
      case 'full':
        if (result.shouldWarn) {
          this.#warn(`More than ${this.#store.maxRecords} peers announced on the LAN; ignoring new announcements until some leave.`);
        }
        return;
      default:
        assertNever(result);
    }
  }

  #goodbye(service: Service): void {
    if (this.#isClosed || typeof service.fqdn !== 'string') return;
    const gone = removeRecord(this.#store, service.fqdn);
    if (gone !== undefined) this.#emitGone(gone);
  }

  #onResponse(packet: MdnsPacket): void {
    if (this.#isClosed || !Array.isArray(packet.answers)) return;
    for (const answer of packet.answers) {
      if (answer.type !== 'PTR' || typeof answer.data !== 'string' || typeof answer.ttl !== 'number' || answer.ttl <= 0) continue;
      const fqdn = answer.data;
      if (!fqdn.toLowerCase().endsWith(PEER_SERVICE_SUFFIX)) continue;
      if (touchRecord(this.#store, fqdn)) continue;
      // An entry swept (or dropped while full) is still known to the Browser, which will not report
      // it as new again: take its last answer from there.
      const known = this.#browser?.services.find((s) => typeof s.fqdn === 'string' && s.fqdn.toLowerCase() === fqdn.toLowerCase());
      if (known !== undefined) this.#accept(known);
    }
  }

  #browse(bonjour: Bonjour): Browser {
    const browser = bonjour.find({ type: PEER_SERVICE_TYPE });
    browser.on('up', (s) => this.#accept(s));
    browser.on('srv-update', (s) => this.#accept(s));
    browser.on('txt-update', (s) => this.#accept(s));
    browser.on('down', (s) => this.#goodbye(s));
    return browser;
  }

  /**
   * Our table is bounded, but bonjour's Browser keeps every service it ever saw, and searches that
   * list on every answer: a host announcing thousands of made-up names would grow it (and the
   * work per packet) without end. Beyond MAX_BROWSED_SERVICES the Browser is replaced by a fresh
   * one, whose query the live peers answer (our own table keeps them meanwhile). Its expire() is
   * not used: it never sees the repeated answers that keep a live peer's entry fresh (we track
   * those ourselves, in #onResponse), so it would drop live peers every TTL.
   */
  #sweep(): void {
    if (this.#isClosed) return;
    for (const gone of sweepRecords(this.#store, Date.now(), this.#ttlMs)) this.#emitGone(gone);
    const browser = this.#browser;
    const bonjour = this.#bonjour;
    if (browser === undefined || bonjour === undefined) return;
    if (browser.services.length <= MAX_BROWSED_SERVICES) {
      browser.update();
      return;
    }
    this.#browserResets += 1;
    this.#logger.warn('discovery.browser_reset', { services: browser.services.length });
    browser.stop();
    browser.removeAllListeners();
    this.#browser = this.#browse(bonjour);
  }

  #emitGone(peer: DiscoveredPeer): void {
    this.#logger.debug('discovery.peer_gone', { user: peer.user, peer: shortId(peer.fingerprint) });
    this.emit('peer.gone', { user: peer.user, fingerprint: peer.fingerprint });
  }

  #warn(message: string): void {
    this.#logger.warn('discovery.warning', { message });
    this.emit('warning', { message });
  }
}

function shortId(fingerprint: string): string {
  return fingerprint.slice(0, 9).replace('-', '').toLowerCase();
}

function assertNever(value: never): never {
  throw new Error(`unexpected ${JSON.stringify(value)}`);
}
