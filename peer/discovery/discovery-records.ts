import { isDialableAddress, normalizeUserName, parseFingerprint, readTxtString } from '../../common/index.js';

/**
 * The pure half of peer discovery: turning untrusted mDNS answers into a bounded table of
 * (user, device fingerprint) entries. Nothing here touches the network, so every limit of
 * SECURITY.md H5 is tested with plain objects shaped like bonjour-service's Service.
 *
 * mDNS answers are only hints (H5): an entry says "someone on the LAN claims to be this user and
 * device at these addresses"; the link handshake decides who it really is.
 */

export const DEFAULT_MAX_RECORDS = 256;
export const DEFAULT_MAX_ADDRESSES_PER_RECORD = 8;

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface DiscoveredPeer {
  readonly user: string;
  readonly fingerprint: string;
  readonly addresses: readonly PeerAddress[];
}

/** The fields of a bonjour-service Service we read; all `unknown` because they come off the wire. */
export interface RawService {
  readonly fqdn?: unknown;
  readonly port?: unknown;
  readonly txt?: unknown;
  readonly addresses?: unknown;
  readonly referer?: unknown;
}

interface StoredEntry {
  readonly user: string;
  readonly fingerprint: string;
  addresses: PeerAddress[];
  /** Service instance names (lower-cased) that map to this entry, for goodbyes and refreshes. */
  readonly fqdns: Set<string>;
  lastSeenMs: number;
}

export interface RecordStore {
  readonly ownFingerprint: string;
  readonly maxRecords: number;
  readonly maxAddressesPerRecord: number;
  readonly entries: Map<string, StoredEntry>;
  readonly keyByFqdn: Map<string, string>;
  /** Set once the table is full and the caller has been told; cleared when it has room again. */
  hasWarnedFull: boolean;
}

export function createRecordStore(options: {
  ownFingerprint: string;
  maxRecords?: number;
  maxAddressesPerRecord?: number;
}): RecordStore {
  return {
    ownFingerprint: parseFingerprint(options.ownFingerprint),
    maxRecords: options.maxRecords ?? DEFAULT_MAX_RECORDS,
    maxAddressesPerRecord: options.maxAddressesPerRecord ?? DEFAULT_MAX_ADDRESSES_PER_RECORD,
    entries: new Map(),
    keyByFqdn: new Map(),
    hasWarnedFull: false,
  };
}

export interface ValidRecord {
  readonly user: string;
  readonly fingerprint: string;
  readonly fqdn: string | undefined;
  readonly addresses: readonly PeerAddress[];
}

export type ValidationResult = { readonly isValid: true; readonly record: ValidRecord } | { readonly isValid: false; readonly reason: string };


function hostsOf(raw: RawService): string[] {
  const listed = Array.isArray(raw.addresses) ? (raw.addresses as unknown[]) : [];
  // Only addresses of other machines: an answer must not make us dial our own loopback, say.
  const hosts = listed.filter(isDialableAddress);
  if (hosts.length > 0) return hosts;
  // No usable A/AAAA record: the packet's source address is the next best hint.
  const referer = raw.referer;
  if (typeof referer === 'object' && referer !== null && 'address' in referer) {
    const address: unknown = referer.address;
    if (isDialableAddress(address)) return [address];
  }
  return [];
}

/** Checks one answer against H5's rules; never throws. */
export function validateRecord(raw: RawService, maxAddressesPerRecord = DEFAULT_MAX_ADDRESSES_PER_RECORD): ValidationResult {
  const u = readTxtString(raw.txt, 'u');
  if (u === undefined) return { isValid: false, reason: 'missing or oversized TXT u' };
  let user: string;
  try {
    user = normalizeUserName(u);
  } catch {
    return { isValid: false, reason: 'invalid user name' };
  }
  const fp = readTxtString(raw.txt, 'fp');
  if (fp === undefined) return { isValid: false, reason: 'missing or oversized TXT fp' };
  let fingerprint: string;
  try {
    fingerprint = parseFingerprint(fp);
  } catch {
    return { isValid: false, reason: 'invalid fingerprint' };
  }
  const port = raw.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    return { isValid: false, reason: 'invalid port' };
  }
  const hosts = [...new Set(hostsOf(raw))].slice(0, maxAddressesPerRecord);
  if (hosts.length === 0) return { isValid: false, reason: 'no IP address' };
  const fqdn = typeof raw.fqdn === 'string' && raw.fqdn.length <= 255 ? raw.fqdn.toLowerCase() : undefined;
  return { isValid: true, record: { user, fingerprint, fqdn, addresses: hosts.map((host) => ({ host, port })) } };
}

export type AcceptResult =
  | { readonly kind: 'added'; readonly peer: DiscoveredPeer }
  | { readonly kind: 'updated'; readonly peer: DiscoveredPeer }
  | { readonly kind: 'refreshed'; readonly peer: DiscoveredPeer }
  | { readonly kind: 'own' }
  | { readonly kind: 'rejected'; readonly reason: string }
  /** `shouldWarn` is true only for the first record dropped since the table filled up. */
  | { readonly kind: 'full'; readonly shouldWarn: boolean };

function keyOf(user: string, fingerprint: string): string {
  return `${user}\0${fingerprint}`;
}

function snapshot(entry: StoredEntry): DiscoveredPeer {
  return { user: entry.user, fingerprint: entry.fingerprint, addresses: entry.addresses.map((a) => ({ ...a })) };
}

/**
 * Validates `raw` and merges it into `store`: one entry per (user, fingerprint), whatever the
 * number of interfaces or announcements; addresses are unioned up to maxAddressesPerRecord. When
 * the table holds maxRecords entries, new ones are dropped (existing ones still refresh).
 */
export function acceptRecord(store: RecordStore, raw: RawService, nowMs: number = Date.now()): AcceptResult {
  const result = validateRecord(raw, store.maxAddressesPerRecord);
  if (!result.isValid) return { kind: 'rejected', reason: result.reason };
  const { record } = result;
  if (record.fingerprint === store.ownFingerprint) return { kind: 'own' };
  const key = keyOf(record.user, record.fingerprint);
  const existing = store.entries.get(key);
  if (existing === undefined) {
    if (store.entries.size >= store.maxRecords) {
      const shouldWarn = !store.hasWarnedFull;
      store.hasWarnedFull = true;
      return { kind: 'full', shouldWarn };
    }
    const entry: StoredEntry = {
      user: record.user,
      fingerprint: record.fingerprint,
      addresses: [...record.addresses],
      fqdns: new Set(),
      lastSeenMs: nowMs,
    };
    store.entries.set(key, entry);
    linkFqdn(store, entry, key, record.fqdn);
    return { kind: 'added', peer: snapshot(entry) };
  }
  existing.lastSeenMs = nowMs;
  linkFqdn(store, existing, key, record.fqdn);
  let isChanged = false;
  for (const address of record.addresses) {
    if (existing.addresses.length >= store.maxAddressesPerRecord) break;
    if (existing.addresses.some((a) => a.host === address.host && a.port === address.port)) continue;
    existing.addresses.push(address);
    isChanged = true;
  }
  return { kind: isChanged ? 'updated' : 'refreshed', peer: snapshot(existing) };
}

function linkFqdn(store: RecordStore, entry: StoredEntry, key: string, fqdn: string | undefined): void {
  if (fqdn === undefined || entry.fqdns.has(fqdn)) return;
  // Bounded like the addresses: a flood of instance names for one device cannot grow the maps.
  if (entry.fqdns.size >= store.maxAddressesPerRecord) return;
  const previous = store.keyByFqdn.get(fqdn);
  if (previous !== undefined && previous !== key) store.entries.get(previous)?.fqdns.delete(fqdn);
  entry.fqdns.add(fqdn);
  store.keyByFqdn.set(fqdn, key);
}

function deleteEntry(store: RecordStore, key: string, entry: StoredEntry): DiscoveredPeer {
  store.entries.delete(key);
  for (const fqdn of entry.fqdns) {
    if (store.keyByFqdn.get(fqdn) === key) store.keyByFqdn.delete(fqdn);
  }
  if (store.entries.size < store.maxRecords) store.hasWarnedFull = false;
  return { user: entry.user, fingerprint: entry.fingerprint, addresses: [] };
}

/** Marks the entry announced under `fqdn` as seen now; returns false when no entry has that name. */
export function touchRecord(store: RecordStore, fqdn: string, nowMs: number = Date.now()): boolean {
  const key = store.keyByFqdn.get(fqdn.toLowerCase());
  const entry = key === undefined ? undefined : store.entries.get(key);
  if (entry === undefined) return false;
  entry.lastSeenMs = nowMs;
  return true;
}

/**
 * Handles an mDNS goodbye for the instance `fqdn`. The entry goes when its last instance name says
 * goodbye; returns the peer removed, if any.
 */
export function removeRecord(store: RecordStore, fqdn: string): DiscoveredPeer | undefined {
  const name = fqdn.toLowerCase();
  const key = store.keyByFqdn.get(name);
  if (key === undefined) return undefined;
  store.keyByFqdn.delete(name);
  const entry = store.entries.get(key);
  if (entry === undefined) return undefined;
  entry.fqdns.delete(name);
  if (entry.fqdns.size > 0) return undefined;
  return deleteEntry(store, key, entry);
}

/** Removes every entry not seen for `ttlMs`; returns the peers removed. */
export function sweepRecords(store: RecordStore, nowMs: number, ttlMs: number): DiscoveredPeer[] {
  const gone: DiscoveredPeer[] = [];
  for (const [key, entry] of store.entries) {
    if (nowMs - entry.lastSeenMs > ttlMs) gone.push(deleteEntry(store, key, entry));
  }
  return gone;
}

export function listPeers(store: RecordStore): DiscoveredPeer[] {
  return [...store.entries.values()].map(snapshot);
}
