import { join } from 'node:path';
import { parseFingerprint, readSavedRecords, writePrivateFile } from '../../common/index.js';

export const PINS_FILE = 'known-servers.json';

interface PinRecord {
  fingerprint: string;
  /** `host:port` strings this server was reached at. */
  addresses: string[];
  firstSeenAt: string;
}

/**
 * The rendezvous servers this device has confirmed, like SSH's known_hosts: once a server's key is
 * confirmed (typed code, --server-key, or a loopback demo server), later logins insist on it and a
 * changed key is refused loudly.
 */
export class ServerPins {
  readonly #path: string;
  #records: PinRecord[];

  constructor(dataDir: string) {
    this.#path = join(dataDir, PINS_FILE);
    this.#records = load(this.#path);
  }

  /** The fingerprint pinned for this address, if any. */
  forAddress(host: string, port: number): string | undefined {
    const address = `${host}:${port}`;
    return this.#records.find((r) => r.addresses.includes(address))?.fingerprint;
  }

  isKnown(fingerprint: string): boolean {
    const canonical = parseFingerprint(fingerprint);
    return this.#records.some((r) => r.fingerprint === canonical);
  }

  all(): readonly string[] {
    return this.#records.map((r) => r.fingerprint);
  }

  /** Remembers that `fingerprint` is the server at host:port (moving the address from any other pin). */
  remember(fingerprint: string, host: string, port: number, nowMs = Date.now()): void {
    const canonical = parseFingerprint(fingerprint);
    const address = `${host}:${port}`;
    for (const record of this.#records) record.addresses = record.addresses.filter((a) => a !== address);
    let record = this.#records.find((r) => r.fingerprint === canonical);
    if (record === undefined) {
      record = { fingerprint: canonical, addresses: [], firstSeenAt: new Date(nowMs).toISOString() };
      this.#records.push(record);
    }
    record.addresses.push(address);
    writePrivateFile(this.#path, `${JSON.stringify(this.#records, null, 2)}\n`);
  }
}

/** A corrupted entry is dropped; that server will be confirmed again. */
function load(path: string): PinRecord[] {
  return readSavedRecords(path, (item) => {
    if (typeof item !== 'object' || item === null) throw new Error('not an object');
    const { fingerprint, addresses, firstSeenAt } = item as Record<string, unknown>;
    if (typeof fingerprint !== 'string' || !Array.isArray(addresses) || typeof firstSeenAt !== 'string') throw new Error('missing fields');
    return {
      fingerprint: parseFingerprint(fingerprint),
      addresses: addresses.filter((a): a is string => typeof a === 'string'),
      firstSeenAt,
    };
  });
}
