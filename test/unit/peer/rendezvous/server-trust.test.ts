import { statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, initCrypto, isLoopbackHost } from '../../../../common/index.js';
import { parseServerAddress } from '../../../../peer/connection-options.js';
import { ServerPins, PINS_FILE } from '../../../../peer/rendezvous/server-pins.js';
import { decideServerTrust, probeServerFingerprint } from '../../../../peer/rendezvous/server-trust.js';
import { catchSalaError, rejectsWithSalaError } from '../../../helpers/errors.js';
import { startServer, tempDir } from '../../../helpers/rendezvous.js';

beforeAll(initCrypto);

describe('ServerPins', () => {
  it('remembers a fingerprint per address across instances, in an owner-only file', () => {
    const dir = tempDir();
    new ServerPins(dir).remember('abcd efgh ijkl mnop', '10.0.0.1', 7420);
    const pins = new ServerPins(dir);
    expect(pins.forAddress('10.0.0.1', 7420)).toBe('ABCD-EFGH-IJKL-MNOP');
    expect(pins.forAddress('10.0.0.1', 7421)).toBeUndefined();
    expect(pins.isKnown('ABCDEFGHIJKLMNOP')).toBe(true);
    if (process.platform !== 'win32') expect(statSync(join(dir, PINS_FILE)).mode & 0o777).toBe(0o600);
  });

  it('moves an address to the new fingerprint when it is confirmed again', () => {
    const pins = new ServerPins(tempDir());
    pins.remember('AAAA-AAAA-AAAA-AAAA', '10.0.0.1', 7420);
    pins.remember('BBBB-BBBB-BBBB-BBBB', '10.0.0.1', 7420);
    expect(pins.forAddress('10.0.0.1', 7420)).toBe('BBBB-BBBB-BBBB-BBBB');
  });
});

describe('decideServerTrust', () => {
  const base = { host: '10.0.0.9', port: 7420, identity: undefined as never };


  it('insists on --server-key when it is given, normalised', async () => {
    const trust = await decideServerTrust({ ...base, pins: new ServerPins(tempDir()), serverKey: 'abcd-efgh-ijkl-mnop' });
    expect(trust).toEqual({ expectedFingerprint: 'ABCD-EFGH-IJKL-MNOP' });
  });

  it('insists on the pin remembered for the address', async () => {
    const pins = new ServerPins(tempDir());
    pins.remember('CCCC-CCCC-CCCC-CCCC', '10.0.0.9', 7420);
    expect(await decideServerTrust({ ...base, pins })).toEqual({ expectedFingerprint: 'CCCC-CCCC-CCCC-CCCC' });
  });

  it('allows an unpinned first login only to an explicit loopback server', async () => {
    const pins = new ServerPins(tempDir());
    expect(await decideServerTrust({ ...base, host: '127.0.0.1', pins })).toEqual({ isUnpinnedAllowed: true });
    await rejectsWithSalaError(decideServerTrust({ ...base, pins }), 'SALA_E_SERVER_KEY_UNVERIFIED');
  });

  it('rejects a malformed --server-key with SALA_E_CONFIG_INVALID', async () => {
    await rejectsWithSalaError(decideServerTrust({ ...base, pins: new ServerPins(tempDir()), serverKey: 'not-a-code' }), 'SALA_E_CONFIG_INVALID');
  });

  it('asks a person for the code and accepts it when it matches the key the server proves', async () => {
    const server = await startServer();
    let wasAsked = false;
    const trust = await decideServerTrust({
      host: '127.0.0.1',
      port: server.info.port,
      pins: new ServerPins(tempDir()),
      identity: generateIdentity(),
      isLoopback: () => false,
      askForCode: async () => {
        wasAsked = true;
        return server.info.fingerprint.toLowerCase().replaceAll('-', ' ');
      },
    });
    expect(wasAsked).toBe(true);
    expect(trust).toEqual({ expectedFingerprint: server.info.fingerprint });
  });

  it('refuses a typed code that does not match the proven key with SALA_E_SERVER_KEY_MISMATCH', async () => {
    const server = await startServer();
    const decision = decideServerTrust({
      host: '127.0.0.1',
      port: server.info.port,
      pins: new ServerPins(tempDir()),
      identity: generateIdentity(),
      isLoopback: () => false,
      askForCode: async () => 'AAAA-BBBB-CCCC-DDDD',
    });
    await rejectsWithSalaError(decision, 'SALA_E_SERVER_KEY_MISMATCH');
  });

  it('fails with SALA_E_SERVER_KEY_UNVERIFIED when the person gives no code', async () => {
    const server = await startServer();
    const decision = decideServerTrust({
      host: '127.0.0.1',
      port: server.info.port,
      pins: new ServerPins(tempDir()),
      identity: generateIdentity(),
      isLoopback: () => false,
      askForCode: async () => undefined,
    });
    await rejectsWithSalaError(decision, 'SALA_E_SERVER_KEY_UNVERIFIED');
  });

  it('learns the fingerprint without logging in, and says SALA_E_SERVER_UNREACHABLE when nothing listens', async () => {
    const server = await startServer();
    expect(await probeServerFingerprint('127.0.0.1', server.info.port, generateIdentity())).toBe(server.info.fingerprint);
    const port = server.info.port;
    await server.close();
    await rejectsWithSalaError(probeServerFingerprint('127.0.0.1', port, generateIdentity()), 'SALA_E_SERVER_UNREACHABLE');
  });
});

describe('parseServerAddress and isLoopbackHost', () => {
  it.each([
    ['192.168.1.10:7420', { host: '192.168.1.10', port: 7420 }],
    ['192.168.1.10', { host: '192.168.1.10', port: 7420 }],
    ['[fe80::1]:9000', { host: 'fe80::1', port: 9000 }],
    ['::1', { host: '::1', port: 7420 }],
    ['teacher.local:7421', { host: 'teacher.local', port: 7421 }],
  ])('reads %s', (input, expected) => {
    expect(parseServerAddress(input)).toEqual(expected);
  });

  it.each(['', ':7420', 'host:0', 'host:70000', 'host:12ab'])('refuses %j with SALA_E_CONFIG_INVALID', (input) => {
    catchSalaError(() => parseServerAddress(input), 'SALA_E_CONFIG_INVALID');
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['10.0.0.1', '192.168.0.1', 'fe80::1', 'teacher.local'].some(isLoopbackHost)).toBe(false);
  });
});
