import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { distScript, useLan, type Lan } from '../harness/lan.js';
import {
  assertOnlyHarnessLinks,
  describeLan,
  listLinkNames,
  netnsRequirement,
  NetnsNotIsolatedError,
} from '../harness/netns.js';

const execFileAsync = promisify(execFile);

const MULTICAST_GROUP = '239.77.0.1';
const MULTICAST_PORT = 47_001;
const MDNS_WAIT_MS = 10_000;

describe('netnsRequirement', () => {
  it('allows LAN tests when the runner has set SALA_TEST_NETNS=1', () => {
    expect(netnsRequirement({ SALA_TEST_NETNS: '1', CI: 'true' }, 'linux')).toEqual({ kind: 'available' });
  });

  it('fails LAN tests on Linux under CI when the runner namespace is missing', () => {
    const requirement = netnsRequirement({ CI: 'true' }, 'linux');
    expect(requirement.kind).toBe('fail');
    expect(requirement).toHaveProperty('reason', expect.stringContaining('SALA_TEST_NETNS=1'));
  });

  it('skips LAN tests on Linux outside CI when the runner namespace is missing', () => {
    expect(netnsRequirement({}, 'linux').kind).toBe('skip');
    expect(netnsRequirement({ CI: 'false' }, 'linux').kind).toBe('skip');
  });

  it('skips LAN tests on macOS and Windows even under CI', () => {
    expect(netnsRequirement({ CI: 'true' }, 'darwin').kind).toBe('skip');
    expect(netnsRequirement({ CI: 'true' }, 'win32').kind).toBe('skip');
  });
});

describe('assertOnlyHarnessLinks', () => {
  it('accepts loopback and harness-made links', () => {
    expect(() => assertOnlyHarnessLinks(['lo', 'salabr0', 'sala0h1'])).not.toThrow();
  });

  it('refuses a namespace that has a real interface', () => {
    expect(() => assertOnlyHarnessLinks(['lo', 'eth0', 'salabr0'])).toThrow(NetnsNotIsolatedError);
  });
});

describeLan('the runner namespace', () => {
  it('shows the test process no interface but loopback and harness-made links', async () => {
    const names = await listLinkNames();
    expect(names).toContain('lo');
    expect(() => assertOnlyHarnessLinks(names)).not.toThrow();
  });

  it('gives the test process no address outside loopback', async () => {
    const { stdout } = await execFileAsync('ip', ['-o', 'address', 'show']);
    const devices = stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[1]);
    expect(new Set(devices)).toEqual(new Set(['lo']));
  });
});

function probe(script: 'lan-probe' | 'secure-probe'): string {
  return distScript(`test/harness/${script}.js`);
}

function hostAt(lan: Lan, index: number): string {
  return lan.host(index).address;
}

describeLan('a simulated LAN of two hosts', () => {
  it('delivers a multicast datagram sent on host 1 to a group member on host 2', async () => {
    const lan = await useLan(2);
    const receiver = lan.spawn(1, [probe('lan-probe'), 'mcast-recv', hostAt(lan, 1), MULTICAST_GROUP, String(MULTICAST_PORT)]);
    await receiver.waitForEvent('mcast.ready');

    const sender = lan.spawn(0, [
      probe('lan-probe'),
      'mcast-send',
      hostAt(lan, 0),
      MULTICAST_GROUP,
      String(MULTICAST_PORT),
      'hello group',
    ]);
    await sender.waitForEvent('mcast.sent');

    const datagram = await receiver.waitForEvent('mcast.datagram');
    expect(datagram).toMatchObject({ text: 'hello group', from: hostAt(lan, 0) });
  });

  it('lets an mDNS browser on host 2 find a service published on host 1', async () => {
    const lan = await useLan(2);
    const txt = { fp: 'ABCD-EFGH-IJKL-MNOP', v: '1' };
    const publisher = lan.spawn(0, [probe('lan-probe'), 'mdns-publish', hostAt(lan, 0), 'sala-h1', '4242', JSON.stringify(txt)]);
    const browser = lan.spawn(1, [probe('lan-probe'), 'mdns-browse', hostAt(lan, 1), 'sala-test']);

    await publisher.waitForEvent('mdns.published', { timeoutMs: MDNS_WAIT_MS });
    const found = await browser.waitForEvent('mdns.up', { timeoutMs: MDNS_WAIT_MS });

    expect(found).toMatchObject({
      name: 'sala-h1',
      type: 'sala-test',
      protocol: 'tcp',
      port: 4242,
      txt,
      referer: hostAt(lan, 0),
    });
    expect(found['addresses']).toContain(hostAt(lan, 0));
  });

  it('completes a secure-channel handshake over TCP from host 2 to host 1', async () => {
    const lan = await useLan(2);
    const server = lan.spawn(0, [probe('secure-probe'), 'secure-server', hostAt(lan, 0)]);
    const listening = await server.waitForEvent('secure.listening');

    const client = lan.spawn(1, [
      probe('secure-probe'),
      'secure-client',
      hostAt(lan, 0),
      String(listening['port']),
      String(listening['publicKey']),
      'hello over noise',
    ]);
    const connected = await client.waitForEvent('secure.connected');
    const accepted = await server.waitForEvent('secure.accepted');
    const received = await server.waitForEvent('secure.message');
    const echoed = await client.waitForEvent('secure.message');

    expect(connected['remoteFingerprint']).toBe(listening['fingerprint']);
    expect(accepted).toMatchObject({ remoteFingerprint: connected['fingerprint'], remoteAddress: hostAt(lan, 1) });
    expect(received['text']).toBe('hello over noise');
    expect(echoed['text']).toBe('echo:hello over noise');
  });

  it('refuses a secure channel to host 1 when its key is not the pinned one', async () => {
    const lan = await useLan(2);
    const server = lan.spawn(0, [probe('secure-probe'), 'secure-server', hostAt(lan, 0)]);
    const listening = await server.waitForEvent('secure.listening');

    const otherKey = '11'.repeat(32);
    const client = lan.spawn(1, [
      probe('secure-probe'),
      'secure-client',
      hostAt(lan, 0),
      String(listening['port']),
      otherKey,
      'never sent',
    ]);

    expect(await client.waitForEvent('secure.failed')).toMatchObject({ code: 'SALA_E_REMOTE_KEY_MISMATCH' });
    expect(await server.waitForEvent('secure.failed')).toHaveProperty('code', expect.stringMatching(/^SALA_E_/));
  });

  it('takes host 2 off the bridge with linkDown and reconnects it with linkUp', async () => {
    const lan = await useLan(2);
    const eth0 = async (): Promise<{ operstate: unknown; flags: unknown }> => {
      const parsed: unknown = JSON.parse(await lan.exec(1, 'ip', ['-j', 'link', 'show', 'eth0']));
      const entry = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
      return { operstate: entry?.['operstate'], flags: entry?.['flags'] };
    };

    await lan.linkDown(1);
    expect((await eth0()).flags).toContain('NO-CARRIER');

    await lan.linkUp(1);
    const restored = await eth0();
    expect(restored.operstate).toBe('UP');
    expect(restored.flags).not.toContain('NO-CARRIER');
    const receiver = lan.spawn(1, [probe('lan-probe'), 'mcast-recv', hostAt(lan, 1), MULTICAST_GROUP, String(MULTICAST_PORT)]);
    await receiver.waitForEvent('mcast.ready');
    lan.spawn(0, [probe('lan-probe'), 'mcast-send', hostAt(lan, 0), MULTICAST_GROUP, String(MULTICAST_PORT), 'back']);
    expect(await receiver.waitForEvent('mcast.datagram')).toMatchObject({ text: 'back' });
  });
});
