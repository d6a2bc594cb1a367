/**
 * What keeps a direct link honest after its handshake: traffic control, the heartbeat, renewed
 * tickets, expiry, and revocations passed on. Real links over 127.0.0.1.
 */
import { once } from 'node:events';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  fingerprint,
  generateSigningKeyPair,
  initCrypto,
  issueRevocation,
  issueTicket,
  SalaError,
  TICKET_CLOCK_SKEW_MS,
  type KeyPair,
  type SignedRevocation,
} from '../../../../common/index.js';
import { LinkManager, type LinkManagerOptions, type PeerLink } from '../../../../peer/links/link-manager.js';
import { credentials, device, HOUR, NOW, type Device } from '../../../helpers/tickets.js';

beforeAll(initCrypto);

async function managerFor(server: KeyPair, me: Device, options: Partial<LinkManagerOptions> = {}): Promise<LinkManager> {
  const manager = await LinkManager.listen({
    credentials: credentials(server, me),
    mySessionId: () => me.sessionId,
    host: '127.0.0.1',
    ...options,
  });
  onTestFinished(() => manager.close());
  return manager;
}

async function linked(a: LinkManager, b: LinkManager, bob: Device): Promise<{ out: PeerLink; in: PeerLink }> {
  const incoming = once(b, 'link.up') as Promise<[PeerLink]>;
  const out = await a.connect(bob.user, bob.sessionId, [{ host: '127.0.0.1', port: b.port }]);
  return { out, in: (await incoming)[0] };
}

/** Resolves after `count` more messages arrive on the link (heartbeat pongs): time passing, measured by traffic. */
function afterInbound(link: PeerLink, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => reject(new Error(`only ${seen} of ${count} messages arrived`)), 5_000);
    const onInbound = (): void => {
      if (++seen < count) return;
      clearTimeout(timer);
      link.messages.off('inbound', onInbound);
      resolve();
    };
    link.messages.on('inbound', onInbound);
  });
}

function downCode(manager: LinkManager): Promise<string | undefined> {
  return new Promise((resolve) => manager.once('link.down', (_link, error) => resolve(error?.code)));
}

function renewal(server: KeyPair, of: Device, changes: { sid?: string; generation?: number; notAfterMs?: number; dhPk?: Uint8Array } = {}) {
  return issueTicket(server, {
    kid: fingerprint(server.publicKey),
    user: of.user,
    sid: changes.sid ?? of.sessionId,
    dhPk: changes.dhPk ?? of.identity.dh.publicKey,
    sigPk: of.identity.signing.publicKey,
    notBeforeMs: NOW,
    notAfterMs: changes.notAfterMs ?? NOW + 2 * HOUR,
    generation: changes.generation ?? 2,
  });
}

describe('LinkManager traffic control', () => {
  it('closes the link of a peer that floods messages with SALA_E_RATE_LIMIT, and other links keep working', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob, carol] = [device(server, 'alice'), device(server, 'bob'), device(server, 'carol')];
    const bobLinks = await managerFor(server, bob, { messagesPerSecond: 50, messageBurst: 100 });
    const mallory = await managerFor(server, alice);
    const carolLinks = await managerFor(server, carol);
    const flood = await linked(mallory, bobLinks, bob);
    const calm = await linked(carolLinks, bobLinks, bob);

    const refused = once(flood.out.messages, 'message') as Promise<[{ type: string; code?: string }]>;
    const down = downCode(bobLinks);
    for (let i = 0; i < 500 && !flood.out.messages.isClosed; i++) flood.out.messages.send({ type: 'chat.ack', id: `m${i}` });
    expect(await down).toBe('SALA_E_RATE_LIMIT');
    expect((await refused)[0]).toMatchObject({ type: 'error', code: 'SALA_E_RATE_LIMIT' });

    const got = once(calm.in.messages, 'message');
    calm.out.messages.send({ type: 'chat.ack', id: 'still-here' });
    expect((await got)[0]).toMatchObject({ id: 'still-here' });
  });

  it('closes a link whose other side stops answering for three heartbeat intervals', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    const aliceLinks = await managerFor(server, alice, { heartbeatIntervalMs: 100 });
    const bobLinks = await managerFor(server, bob);
    const link = await linked(aliceLinks, bobLinks, bob);
    const down = once(aliceLinks, 'link.down');
    link.in.channel.pause(); // bob's program hangs: it reads nothing, so it answers no ping
    await down;
    expect(link.out.messages.isClosed).toBe(true);
  });

  it('keeps a link alive across a heartbeat interval when the other side answers', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    // Intervals long enough that a loaded machine's event-loop stalls do not look like silence.
    const aliceLinks = await managerFor(server, alice, { heartbeatIntervalMs: 250 });
    const bobLinks = await managerFor(server, bob);
    const link = await linked(aliceLinks, bobLinks, bob);
    await afterInbound(link.out, 5); // five heartbeats answered: past three intervals
    expect(link.out.messages.isClosed).toBe(false);
  });
});

describe('LinkManager tickets', () => {
  it('accepts a renewed ticket for the same session and key, which then outlives the first one', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    let now = NOW;
    const aliceLinks = await managerFor(server, alice, {
      credentials: credentials(server, alice, { serverNow: () => now }),
      expiryCheckIntervalMs: 20,
      heartbeatIntervalMs: 150,
    });
    const bobLinks = await managerFor(server, bob);
    const link = await linked(aliceLinks, bobLinks, bob);
    bob.ticket = renewal(server, bob);
    bobLinks.pushTicket();
    await vi.waitFor(() => expect(link.out.peer.generation).toBe(2));
    now = NOW + HOUR + TICKET_CLOCK_SKEW_MS + 1_000; // past the first ticket, within the renewed one
    await afterInbound(link.out, 3); // several expiry checks (every 20 ms) have run meanwhile
    expect(link.out.messages.isClosed).toBe(false);
  });

  it('closes a link whose peer ticket ran out without a renewal', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    let now = NOW;
    const aliceLinks = await managerFor(server, alice, { credentials: credentials(server, alice, { serverNow: () => now }), expiryCheckIntervalMs: 20 });
    const bobLinks = await managerFor(server, bob);
    await linked(aliceLinks, bobLinks, bob);
    const down = downCode(aliceLinks);
    now = NOW + HOUR + TICKET_CLOCK_SKEW_MS + 1;
    expect(await down).toBe('SALA_E_TICKET_INVALID');
  });

  for (const [name, changes] of [
    ['another session', { sid: 'someone-else' }],
    ['an older generation', { generation: 0 }],
    ['another device key', { dhPk: new Uint8Array(32).fill(7) }],
  ] as const) {
    it(`closes the link when a "renewed" ticket is for ${name}`, async () => {
      const server = generateSigningKeyPair();
      const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
      const aliceLinks = await managerFor(server, alice);
      const bobLinks = await managerFor(server, bob);
      await linked(aliceLinks, bobLinks, bob);
      const down = downCode(aliceLinks);
      bob.ticket = renewal(server, bob, changes);
      bobLinks.pushTicket();
      expect(await down).toBe('SALA_E_TICKET_INVALID');
    });
  }

  it('closes the link when a renewed ticket is signed by another server', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    const aliceLinks = await managerFor(server, alice);
    const bobLinks = await managerFor(server, bob);
    await linked(aliceLinks, bobLinks, bob);
    const down = downCode(aliceLinks);
    bob.ticket = renewal(generateSigningKeyPair(), bob);
    bobLinks.pushTicket();
    expect(await down).toBe('SALA_E_TICKET_INVALID');
  });
});

describe('LinkManager revocations', () => {
  it('passes a revocation on to every other link, and reports the ones it receives', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob, carol] = [device(server, 'alice'), device(server, 'bob'), device(server, 'carol')];
    const aliceLinks = await managerFor(server, alice);
    const bobLinks = await managerFor(server, bob);
    const carolLinks = await managerFor(server, carol);
    const toBob = await linked(aliceLinks, bobLinks, bob);
    await linked(aliceLinks, carolLinks, carol);
    const revocation = issueRevocation(server, { kid: fingerprint(server.publicKey), user: 'dave', sessionId: 'd-1', issuedAtMs: NOW, reason: 'kick' });
    const bobGot = once(bobLinks, 'revoked') as Promise<[SignedRevocation, PeerLink]>;
    const carolGot = once(carolLinks, 'revoked') as Promise<[SignedRevocation, PeerLink]>;
    aliceLinks.forwardRevocation(revocation, undefined);
    const [[atBob, from], [atCarol]] = await Promise.all([bobGot, carolGot]);
    expect(Buffer.from(atBob.sig).equals(Buffer.from(revocation.sig))).toBe(true);
    expect(Buffer.from(atCarol.body).equals(Buffer.from(revocation.body))).toBe(true);
    expect(from.peer.user).toBe('alice');
    void toBob;
  });

  it('drops the link of a revoked session with the reason given', async () => {
    const server = generateSigningKeyPair();
    const [alice, bob] = [device(server, 'alice'), device(server, 'bob')];
    const aliceLinks = await managerFor(server, alice);
    const bobLinks = await managerFor(server, bob);
    await linked(aliceLinks, bobLinks, bob);
    const down = downCode(aliceLinks);
    aliceLinks.drop(bob.sessionId, new SalaError('SALA_E_TICKET_INVALID', 'revoked'));
    expect(await down).toBe('SALA_E_TICKET_INVALID');
  });
});
