import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/index.js';
import { candidateFrom, findServers, type RawServerAnswer } from '../../../../peer/discovery/index.js';

/**
 * The conversion of an untrusted `_sala-rendezvous._tcp` answer into a server candidate, fed with
 * plain objects shaped like bonjour-service's Service as its Browser builds them from a packet. No
 * network is involved (findServers' browsing is tested in test/e2e/server-finder.test.ts).
 */

const FP = 'ABCD-EFGH-IJKL-MNOP';
const NAME = 'Sala rendezvous ABCD';

function answer(overrides: Partial<Record<keyof RawServerAnswer, unknown>> = {}): RawServerAnswer {
  return {
    name: NAME,
    fqdn: `${NAME}._sala-rendezvous._tcp.local`,
    port: 7420,
    txt: { fp: FP, v: '1' },
    addresses: ['10.100.1.1'],
    referer: { address: '10.100.1.9', family: 'IPv4', port: 5353, size: 200 },
    ...overrides,
  };
}

describe('candidateFrom', () => {
  it('reads the name, the A record, the port and the fingerprint of a well-formed answer', () => {
    expect(candidateFrom(answer())).toEqual({ name: NAME, host: '10.100.1.1', port: 7420, fingerprint: FP });
  });

  it('canonicalises a fingerprint written in lower case without dashes', () => {
    expect(candidateFrom(answer({ txt: { fp: 'abcdefghijklmnop' } }))?.fingerprint).toBe(FP);
  });

  it('prefers the first IPv4 A record to AAAA records listed before it', () => {
    const candidate = candidateFrom(answer({ addresses: ['fe80::1', '2001:db8::1', '10.100.1.2', '10.100.1.3'] }));
    expect(candidate?.host).toBe('10.100.1.2');
  });

  it.each([
    ['no addresses', []],
    ['only IPv6 addresses', ['fe80::1']],
    ['addresses that are not strings', [42, null, { address: '10.0.0.1' }]],
    ['an addresses field that is not an array', '10.100.1.1'],
  ])('falls back to the responder address when the answer has %s', (_name, addresses) => {
    expect(candidateFrom(answer({ addresses }))?.host).toBe('10.100.1.9');
  });

  it.each([
    ['not an IP address', '10.100.1.300'],
    ['0.0.0.0', '0.0.0.0'],
    ['a loopback address', '127.0.0.1'],
    ['a multicast address', '224.0.0.251'],
    ['the broadcast address', '255.255.255.255'],
  ])('skips an A record that is %s', (_name, address) => {
    expect(candidateFrom(answer({ addresses: [address, '10.100.1.4'] }))?.host).toBe('10.100.1.4');
  });

  it.each([
    ['no referer', undefined],
    ['an IPv6 referer', { address: 'fe80::2', family: 'IPv6', port: 5353, size: 200 }],
    ['a referer that is not an object', '10.100.1.9'],
    ['a referer address that is not a string', { address: 167_772_161 }],
    ['a loopback referer', { address: '127.0.0.1', family: 'IPv4', port: 5353, size: 200 }],
  ])('drops an answer with no A record and %s', (_name, referer) => {
    expect(candidateFrom(answer({ addresses: [], referer }))).toBeUndefined();
  });

  it.each([
    ['port 0', 0],
    ['a port above 65535', 65_536],
    ['a negative port', -1],
    ['a fractional port', 7420.5],
    ['a port that is a string', '7420'],
    ['no port', undefined],
  ])('drops an answer with %s', (_name, port) => {
    expect(candidateFrom(answer({ port }))).toBeUndefined();
  });

  it.each([
    ['no name', undefined],
    ['an empty name', ''],
    ['a name that is not a string', 42],
    ['a name longer than a DNS label', 'x'.repeat(64)],
  ])('drops an answer with %s', (_name, name) => {
    expect(candidateFrom(answer({ name }))).toBeUndefined();
  });

  it('replaces control and bidi characters in the name, which may be printed', () => {
    expect(candidateFrom(answer({ name: 'Sala\u001b[2J\u202egnp.exe' }))?.name).toBe('Sala\uFFFD[2J\uFFFDgnp.exe');
  });

  it.each([
    ['no TXT record', undefined],
    ['TXT that is not an object', 'fp=ABCD-EFGH-IJKL-MNOP'],
    ['no fp key', { v: '1' }],
    ['an fp that is not a fingerprint', { fp: 'not-a-fingerprint' }],
    ['an fp with a character outside base32', { fp: 'ABCD-EFGH-IJKL-MNO1' }],
    ['an fp that is not a string', { fp: 42 }],
    ['an fp longer than 64 characters', { fp: `${FP}${' '.repeat(64)}` }],
    ['an fp inherited from the prototype', Object.create({ fp: FP }) as unknown],
  ])('keeps an answer with %s, without a fingerprint', (_name, txt) => {
    expect(candidateFrom(answer({ txt }))).toEqual({ name: NAME, host: '10.100.1.1', port: 7420, fingerprint: undefined });
  });

  it('reads only fp from a TXT record flooded with huge values', () => {
    const txt: Record<string, string> = { fp: FP };
    for (let i = 0; i < 1_000; i++) txt[`k${i}`] = 'x'.repeat(10_000);
    expect(candidateFrom(answer({ txt }))?.fingerprint).toBe(FP);
  });

  it('never throws on values of the wrong type everywhere', () => {
    const weird: unknown[] = [undefined, null, 0, NaN, '', 'x', [], {}, Symbol('s'), () => 1, new Proxy({}, {})];
    for (const value of weird) {
      const raw = { name: value, port: value, txt: value, addresses: value, referer: value, fqdn: value };
      expect(() => candidateFrom(raw)).not.toThrow();
      expect(candidateFrom(raw)).toBeUndefined();
    }
  });
});

describe('findServers options', () => {
  it.each([
    ['timeoutMs', { timeoutMs: 0 }],
    ['timeoutMs', { timeoutMs: 1.5 }],
    ['settleMs', { settleMs: -1 }],
    ['settleMs', { settleMs: Number.NaN }],
  ])('rejects a bad %s with SALA_E_CONFIG_INVALID before touching the network', async (name, options) => {
    const error = await findServers(options).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SalaError);
    expect(error).toMatchObject({ code: 'SALA_E_CONFIG_INVALID', message: expect.stringContaining(name) as unknown });
  });

  it('rejects with SALA_E_ABORTED before touching the network when the signal is already aborted', async () => {
    const error = await findServers({ signal: AbortSignal.abort() }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'SALA_E_ABORTED' });
  });
});
