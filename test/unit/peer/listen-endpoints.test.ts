import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkInterfaceAddress, endpointsToAnnounce, isMdnsUseful } from '../../../peer/listen-endpoints.js';

function info(address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo {
  return { address, family, internal, netmask: '', mac: '00:00:00:00:00:00', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) } as NetworkInterfaceInfo;
}

const LAPTOP = {
  lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
  wlan0: [info('192.168.1.20', 'IPv4'), info('fe80::1', 'IPv6')],
  'vEthernet (WSL)': [info('172.20.0.1', 'IPv4')],
  eth1: [info('169.254.10.10', 'IPv4')],
};

describe('endpointsToAnnounce', () => {
  it('announces just the address a listener is bound to', () => {
    expect(endpointsToAnnounce('127.0.0.1', 5000, { interfaces: LAPTOP })).toEqual([{ host: '127.0.0.1', port: 5000 }]);
  });

  it('announces every non-loopback, non-link-local IPv4 address for a wildcard listener', () => {
    expect(endpointsToAnnounce('0.0.0.0', 5000, { interfaces: LAPTOP })).toEqual([
      { host: '192.168.1.20', port: 5000 },
      { host: '172.20.0.1', port: 5000 },
    ]);
  });

  it('announces only the chosen interface with --interface', () => {
    expect(endpointsToAnnounce('0.0.0.0', 5000, { interfaces: LAPTOP, interfaceAddress: '192.168.1.20' })).toEqual([{ host: '192.168.1.20', port: 5000 }]);
  });

  it('falls back to loopback on a machine with no network', () => {
    expect(endpointsToAnnounce('0.0.0.0', 5000, { interfaces: { lo: LAPTOP.lo } })).toEqual([{ host: '127.0.0.1', port: 5000 }]);
  });
});

describe('checkInterfaceAddress', () => {
  it('accepts an address of this machine', () => {
    expect(checkInterfaceAddress('192.168.1.20', LAPTOP)).toBe('192.168.1.20');
  });

  it('refuses anything else with SALA_E_CONFIG_INVALID and lists the choices', () => {
    expect(() => checkInterfaceAddress('wlan0', LAPTOP)).toThrow(expect.objectContaining({ code: 'SALA_E_CONFIG_INVALID', message: expect.stringContaining('192.168.1.20 (wlan0)') }));
    expect(() => checkInterfaceAddress('10.9.9.9', LAPTOP)).toThrow(expect.objectContaining({ code: 'SALA_E_CONFIG_INVALID' }));
  });
});

describe('isMdnsUseful', () => {
  it('is off on loopback and on for a LAN address or a wildcard listener', () => {
    expect(isMdnsUseful('127.0.0.1', undefined)).toBe(false);
    expect(isMdnsUseful('0.0.0.0', '127.0.0.1')).toBe(false);
    expect(isMdnsUseful('0.0.0.0', undefined)).toBe(true);
    expect(isMdnsUseful('0.0.0.0', '192.168.1.20')).toBe(true);
  });
});
