import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/index.js';
import { PeerDiscovery } from '../../../../peer/discovery/index.js';

/** Only the paths that never open a socket: options checks and `--no-mdns`. */

const FP = 'ABCD-EFGH-IJKL-MNOP';

describe('PeerDiscovery without the network', () => {
  it('does nothing and lists no peers when mDNS is disabled', async () => {
    const discovery = new PeerDiscovery({ user: 'alice', deviceFingerprint: FP, port: 4000, isMdnsEnabled: false });
    discovery.start();
    expect(discovery.peers()).toEqual([]);
    await discovery.close();
    await discovery.close();
  });

  it('names its service sala-<user>-<first 8 fingerprint characters>', () => {
    const discovery = new PeerDiscovery({ user: 'Alice', deviceFingerprint: FP.toLowerCase(), port: 4000, isMdnsEnabled: false });
    expect(discovery.serviceName).toBe('sala-alice-ABCDEFGH');
  });

  it.each([
    ['an invalid user', { user: 'a b' }, 'SALA_E_INVALID_NAME'],
    ['a bad fingerprint', { deviceFingerprint: 'nope' }, 'SALA_E_CONFIG_INVALID'],
    ['port 0', { port: 0 }, 'SALA_E_CONFIG_INVALID'],
    ['maxRecords 0', { maxRecords: 0 }, 'SALA_E_CONFIG_INVALID'],
  ])('refuses %s', (_name, overrides, code) => {
    const make = (): PeerDiscovery =>
      new PeerDiscovery({ user: 'alice', deviceFingerprint: FP, port: 4000, isMdnsEnabled: false, ...overrides });
    expect(make).toThrow(SalaError);
    try {
      make();
    } catch (err) {
      expect((err as SalaError).code).toBe(code);
    }
  });
});
