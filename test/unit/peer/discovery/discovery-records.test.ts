import { describe, expect, it } from 'vitest';
import {
  acceptRecord,
  createRecordStore,
  listPeers,
  removeRecord,
  sweepRecords,
  touchRecord,
  validateRecord,
  type RawService,
} from '../../../../peer/discovery/index.js';

/**
 * The validation and merging of mDNS answers (SECURITY.md H5), fed with plain objects shaped like
 * bonjour-service's Service as its Browser builds them from a packet. No network is involved.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const OWN_FP = 'OOOO-OOOO-OOOO-OOOO';

/** A distinct, well-formed fingerprint for each n. */
function fpOf(n: number): string {
  let code = '';
  for (let rest = n, i = 0; i < 16; i++, rest = Math.floor(rest / 32)) code = (ALPHABET[rest % 32] ?? 'A') + code;
  return code.match(/.{4}/g)?.join('-') ?? code;
}

function service(overrides: Partial<Record<keyof RawService, unknown>> & { user?: string; fp?: string } = {}): RawService {
  const { user = 'alice', fp = fpOf(1), ...rest } = overrides;
  return {
    fqdn: `sala-${user}-${fp.replace(/-/g, '').slice(0, 8)}._sala._tcp.local`,
    port: 40_000,
    txt: { u: user, fp, v: '1' },
    addresses: ['10.100.1.2'],
    referer: { address: '10.100.1.2', family: 'IPv4', port: 5353, size: 200 },
    ...rest,
  };
}

function newStore(maxRecords?: number): ReturnType<typeof createRecordStore> {
  return createRecordStore({ ownFingerprint: OWN_FP, ...(maxRecords === undefined ? {} : { maxRecords }) });
}

describe('validateRecord', () => {
  it('accepts a well-formed answer and normalises the user name and fingerprint', () => {
    const result = validateRecord(service({ user: 'Alice', fp: fpOf(1).toLowerCase() }));
    expect(result).toMatchObject({ isValid: true, record: { user: 'alice', fingerprint: fpOf(1) } });
  });

  it.each([
    ['a user name with a space', { txt: { u: 'al ice', fp: fpOf(1) } }],
    ['a one-letter user name', { txt: { u: 'a', fp: fpOf(1) } }],
    ['a missing user name', { txt: { fp: fpOf(1) } }],
    ['a user name that is not a string', { txt: { u: 42, fp: fpOf(1) } }],
    ['no TXT at all', { txt: undefined }],
  ])('rejects %s', (_name, overrides) => {
    expect(validateRecord(service(overrides))).toMatchObject({ isValid: false });
  });

  it.each([
    ['too short', 'ABCD-EFGH'],
    ['outside base32', 'ABCD-EFGH-IJKL-MN01'],
    ['too long', 'ABCD-EFGH-IJKL-MNOP-QRST'],
  ])('rejects a fingerprint %s', (_name, fp) => {
    expect(validateRecord(service({ txt: { u: 'alice', fp } }))).toEqual({ isValid: false, reason: 'invalid fingerprint' });
  });

  it.each([0, -1, 65_536, 1.5, '80', Number.NaN])('rejects port %s', (port) => {
    expect(validateRecord(service({ port }))).toEqual({ isValid: false, reason: 'invalid port' });
  });

  it('keeps only IP literals among the addresses, deduplicated', () => {
    const result = validateRecord(
      service({ addresses: ['evil.example', '999.1.1.1', '10.100.1.2', 'fd00::1', '10.100.1.2', 7, '', 'localhost'] }),
    );
    expect(result).toMatchObject({
      isValid: true,
      record: { addresses: [{ host: '10.100.1.2', port: 40_000 }, { host: 'fd00::1', port: 40_000 }] },
    });
  });

  it('drops addresses nobody should dial on a stranger\'s word: loopback, unspecified, multicast, broadcast, link-local IPv6', () => {
    const hostile = ['127.0.0.1', '127.8.8.8', '0.0.0.0', '0.1.2.3', '224.0.0.251', '239.1.1.1', '255.255.255.255', '::', '::1', 'ff02::fb', 'fe80::1', '::ffff:127.0.0.1'];
    const result = validateRecord(service({ addresses: [...hostile, '10.100.1.9'] }));
    expect(result).toMatchObject({ isValid: true, record: { addresses: [{ host: '10.100.1.9', port: 40_000 }] } });
  });

  it('falls back to the packet source when no address record is usable', () => {
    const result = validateRecord(service({ addresses: ['host.local', '999.1.1.1'] }));
    expect(result).toMatchObject({ isValid: true, record: { addresses: [{ host: '10.100.1.2' }] } });
  });

  it('rejects an answer with no usable address at all', () => {
    expect(validateRecord(service({ addresses: ['host.local'], referer: { address: 'nope' } }))).toEqual({
      isValid: false,
      reason: 'no IP address',
    });
  });

  it('keeps at most maxAddressesPerRecord addresses', () => {
    const addresses = Array.from({ length: 100 }, (_, i) => `10.0.${i}.1`);
    const result = validateRecord(service({ addresses }), 8);
    expect(result.isValid && result.record.addresses).toHaveLength(8);
  });

  it('rejects a huge TXT value without normalising it', () => {
    const huge = 'a'.repeat(1_000_000);
    expect(validateRecord(service({ txt: { u: huge, fp: fpOf(1) } }))).toMatchObject({ isValid: false });
    expect(validateRecord(service({ txt: { u: 'alice', fp: `${fpOf(1)}${' '.repeat(100_000)}` } }))).toMatchObject({ isValid: false });
  });

  it('ignores the other keys of a TXT record with thousands of keys', () => {
    const txt: Record<string, string> = { u: 'alice', fp: fpOf(1) };
    for (let i = 0; i < 10_000; i++) txt[`k${i}`] = 'x'.repeat(100);
    expect(validateRecord(service({ txt }))).toMatchObject({ isValid: true, record: { user: 'alice' } });
  });

  it('does not read TXT keys inherited from the prototype', () => {
    const txt = Object.create({ u: 'alice', fp: fpOf(1) }) as object;
    expect(validateRecord(service({ txt }))).toMatchObject({ isValid: false });
  });
});

describe('acceptRecord', () => {
  it('adds a new peer with its address and port', () => {
    const store = newStore();
    expect(acceptRecord(store, service())).toEqual({
      kind: 'added',
      peer: { user: 'alice', fingerprint: fpOf(1), addresses: [{ host: '10.100.1.2', port: 40_000 }] },
    });
    expect(listPeers(store)).toHaveLength(1);
  });

  it('ignores its own record', () => {
    const store = newStore();
    expect(acceptRecord(store, service({ user: 'me', fp: OWN_FP.toLowerCase() }))).toEqual({ kind: 'own' });
    expect(listPeers(store)).toEqual([]);
  });

  it('does not store a rejected record', () => {
    const store = newStore();
    expect(acceptRecord(store, service({ txt: { u: '!!', fp: fpOf(1) } }))).toMatchObject({ kind: 'rejected' });
    expect(listPeers(store)).toEqual([]);
  });

  it('merges the answers of a multi-homed host into one entry with both addresses', () => {
    const store = newStore();
    acceptRecord(store, service({ addresses: ['10.100.1.2'] }));
    const second = acceptRecord(store, service({ addresses: ['192.168.1.2', '10.100.1.2'], fqdn: 'other._sala._tcp.local' }));
    expect(second).toMatchObject({ kind: 'updated' });
    expect(listPeers(store)).toEqual([
      {
        user: 'alice',
        fingerprint: fpOf(1),
        addresses: [
          { host: '10.100.1.2', port: 40_000 },
          { host: '192.168.1.2', port: 40_000 },
        ],
      },
    ]);
  });

  it('reports a repeated identical answer as a refresh, not a change', () => {
    const store = newStore();
    acceptRecord(store, service());
    expect(acceptRecord(store, service())).toMatchObject({ kind: 'refreshed' });
  });

  it('caps the merged addresses of one entry at maxAddressesPerRecord', () => {
    const store = createRecordStore({ ownFingerprint: OWN_FP, maxAddressesPerRecord: 3 });
    for (let i = 0; i < 50; i++) acceptRecord(store, service({ addresses: [`10.0.0.${i}`], fqdn: `n${i}._sala._tcp.local` }));
    const [peer] = listPeers(store);
    expect(peer?.addresses).toHaveLength(3);
    expect(store.keyByFqdn.size).toBeLessThanOrEqual(3);
  });

  it('keeps two devices of one user apart', () => {
    const store = newStore();
    acceptRecord(store, service({ fp: fpOf(1) }));
    acceptRecord(store, service({ fp: fpOf(2) }));
    expect(listPeers(store).map((p) => p.fingerprint)).toEqual([fpOf(1), fpOf(2)]);
  });

  it('bounds 10,000 distinct fake records at maxRecords and asks for a single warning', () => {
    const store = newStore(256);
    const results = Array.from({ length: 10_000 }, (_, i) => acceptRecord(store, service({ user: `u${i}`, fp: fpOf(i + 10) })));
    expect(listPeers(store)).toHaveLength(256);
    expect(results.filter((r) => r.kind === 'added')).toHaveLength(256);
    expect(results.filter((r) => r.kind === 'full')).toHaveLength(10_000 - 256);
    expect(results.filter((r) => r.kind === 'full' && r.shouldWarn)).toHaveLength(1);
    expect(store.keyByFqdn.size).toBe(256);
  });

  it('still refreshes known peers when the table is full', () => {
    const store = newStore(2);
    acceptRecord(store, service({ user: 'alice', fp: fpOf(1) }), 0);
    acceptRecord(store, service({ user: 'bob', fp: fpOf(2) }), 0);
    expect(acceptRecord(store, service({ user: 'carol', fp: fpOf(3) }), 0)).toEqual({ kind: 'full', shouldWarn: true });
    expect(acceptRecord(store, service({ user: 'alice', fp: fpOf(1) }), 100_000)).toMatchObject({ kind: 'refreshed' });
    expect(sweepRecords(store, 150_000, 120_000).map((p) => p.user)).toEqual(['bob']);
  });

  it('takes new records again, and warns again, once the full table has room', () => {
    const store = newStore(1);
    acceptRecord(store, service({ user: 'alice', fp: fpOf(1) }));
    expect(acceptRecord(store, service({ user: 'bob', fp: fpOf(2) }))).toEqual({ kind: 'full', shouldWarn: true });
    removeRecord(store, service({ user: 'alice', fp: fpOf(1) }).fqdn as string);
    expect(acceptRecord(store, service({ user: 'bob', fp: fpOf(2) }))).toMatchObject({ kind: 'added' });
    expect(acceptRecord(store, service({ user: 'carol', fp: fpOf(3) }))).toEqual({ kind: 'full', shouldWarn: true });
  });
});

describe('removal', () => {
  it('removes an entry on the goodbye of its instance name, in any case', () => {
    const store = newStore();
    const raw = service();
    acceptRecord(store, raw);
    expect(removeRecord(store, String(raw.fqdn).toUpperCase())).toMatchObject({ user: 'alice', fingerprint: fpOf(1) });
    expect(listPeers(store)).toEqual([]);
    expect(store.keyByFqdn.size).toBe(0);
  });

  it('ignores a goodbye for an unknown name', () => {
    const store = newStore();
    acceptRecord(store, service());
    expect(removeRecord(store, 'stranger._sala._tcp.local')).toBeUndefined();
    expect(listPeers(store)).toHaveLength(1);
  });

  it('keeps a multi-homed entry until its last instance name says goodbye', () => {
    const store = newStore();
    acceptRecord(store, service({ fqdn: 'a._sala._tcp.local' }));
    acceptRecord(store, service({ fqdn: 'b._sala._tcp.local', addresses: ['10.0.0.9'] }));
    expect(removeRecord(store, 'a._sala._tcp.local')).toBeUndefined();
    expect(removeRecord(store, 'b._sala._tcp.local')).toMatchObject({ user: 'alice' });
  });

  it('sweeps entries not seen within the TTL and keeps touched ones', () => {
    const store = newStore();
    acceptRecord(store, service({ user: 'alice', fp: fpOf(1) }), 0);
    acceptRecord(store, service({ user: 'bob', fp: fpOf(2) }), 0);
    expect(touchRecord(store, String(service({ user: 'bob', fp: fpOf(2) }).fqdn), 60_000)).toBe(true);
    expect(sweepRecords(store, 120_000, 120_000)).toEqual([]);
    expect(sweepRecords(store, 120_001, 120_000).map((p) => p.user)).toEqual(['alice']);
    expect(listPeers(store).map((p) => p.user)).toEqual(['bob']);
  });
});
