import { createServer, type AddressInfo, type Socket } from 'node:net';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  generateIdentity,
  generateSigningKeyPair,
  initCrypto,
  packMessage,
  SalaError,
  unpackUnknown,
  type SignedTicket,
} from '../../../../common/index.js';
import { acceptLink, dialLink, type Link, type LinkCredentials } from '../../../../peer/links/link-handshake.js';
import { rejectsWithSalaError } from '../../../helpers/errors.js';
import { credentials, device, HOUR, NOW } from '../../../helpers/tickets.js';

beforeAll(initCrypto);

/** A peer listening on 127.0.0.1 that accepts links with the given credentials. */
async function listen(creds: LinkCredentials): Promise<{ port: number; next: () => Promise<Link | SalaError> }> {
  const results: Promise<Link | SalaError>[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    results.push(acceptLink(socket, { credentials: creds }).catch((err: unknown) => err as SalaError));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  let taken = 0;
  return {
    port: (server.address() as AddressInfo).port,
    next: async () => {
      while (results.length <= taken) await new Promise((r) => setImmediate(r));
      return results[taken++] as Promise<Link | SalaError>;
    },
  };
}

describe('peer link handshake', () => {
  it('links two logged-in peers and tells each who the other is', async () => {
    const server = generateSigningKeyPair();
    const alice = device(server, 'alice');
    const bob = device(server, 'bob');
    const bobListens = await listen(credentials(server, bob));
    const link = await dialLink({ host: '127.0.0.1', port: bobListens.port, expectedUser: 'bob', credentials: credentials(server, alice) });
    onTestFinished(() => void link.channel.destroy());
    expect(link.peer.user).toBe('bob');
    const accepted = (await bobListens.next()) as Link;
    onTestFinished(() => void accepted.channel.destroy());
    expect(accepted.peer.user).toBe('alice');
  });

  it('refuses Mallory answering at bob\'s address with her own valid ticket (dial bob, get mallory)', async () => {
    const server = generateSigningKeyPair();
    const mallory = device(server, 'mallory');
    const listening = await listen(credentials(server, mallory));
    const err = await rejectsWithSalaError(
      dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) }),
      'SALA_E_TICKET_INVALID',
    );
    expect(err.message).toContain('mallory');
    // Alice never sent msg 3: Mallory never saw her ticket.
    expect(await listening.next()).toBeInstanceOf(SalaError);
  });

  it('refuses a ticket issued for another device key (a stolen ticket)', async () => {
    const server = generateSigningKeyPair();
    const victim = generateIdentity();
    const thief = device(server, 'bob', { ticketFor: victim });
    const listening = await listen(credentials(server, thief));
    const err = await rejectsWithSalaError(
      dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) }),
      'SALA_E_TICKET_INVALID',
    );
    expect(err.message).toContain('another device key');
  });

  it('refuses a ticket signed by another server', async () => {
    const ours = generateSigningKeyPair();
    const theirs = generateSigningKeyPair();
    const listening = await listen(credentials(theirs, device(theirs, 'bob')));
    await rejectsWithSalaError(
      dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(ours, device(ours, 'alice')) }),
      'SALA_E_TICKET_INVALID',
    );
  });

  it.each([
    ['expired two hours ago', NOW - 3 * HOUR],
    ['not valid for another two hours', NOW + 2 * HOUR],
  ])('refuses a ticket %s (judged by server time)', async (_name, validFrom) => {
    const server = generateSigningKeyPair();
    const listening = await listen(credentials(server, device(server, 'bob', { validFrom })));
    await rejectsWithSalaError(
      dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) }),
      'SALA_E_TICKET_INVALID',
    );
  });

  it('refuses a revoked session', async () => {
    const server = generateSigningKeyPair();
    const listening = await listen(credentials(server, device(server, 'bob', { sessionId: 'kicked' })));
    const alice = credentials(server, device(server, 'alice'), { isRevoked: (sid) => sid === 'kicked' });
    const err = await rejectsWithSalaError(dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: alice }), 'SALA_E_TICKET_INVALID');
    expect(err.message).toContain('revoked');
  });

  it.each([
    ['re-encoded (other bytes than the server signed)', (t: SignedTicket): SignedTicket => ({ body: reencode(t.body), sig: t.sig })],
    ['with trailing bytes', (t: SignedTicket): SignedTicket => ({ body: Buffer.concat([t.body, Buffer.from([0xc0])]), sig: t.sig })],
    ['with a flipped signature bit', (t: SignedTicket): SignedTicket => ({ body: t.body, sig: flip(t.sig) })],
  ])('refuses a ticket %s', async (_name, tamper) => {
    const server = generateSigningKeyPair();
    const bob = device(server, 'bob');
    const listening = await listen(credentials(server, { ...bob, ticket: tamper(bob.ticket) }));
    await rejectsWithSalaError(
      dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(server, device(server, 'alice')) }),
      'SALA_E_TICKET_INVALID',
    );
  });

  it('makes the responder refuse an initiator whose ticket is invalid', async () => {
    const server = generateSigningKeyPair();
    const listening = await listen(credentials(server, device(server, 'bob')));
    const expired = device(server, 'alice', { validFrom: NOW - 3 * HOUR });
    const dialled = await dialLink({ host: '127.0.0.1', port: listening.port, expectedUser: 'bob', credentials: credentials(server, expired) });
    dialled.channel.on('error', () => undefined);
    onTestFinished(() => void dialled.channel.destroy());
    const refused = await listening.next();
    expect(refused).toBeInstanceOf(SalaError);
    expect((refused as SalaError).code).toBe('SALA_E_TICKET_INVALID');
  });
});

/** Decodes and re-encodes with a different integer width: the same value, other bytes. */
function reencode(body: Uint8Array): Buffer {
  const bytes = packMessage(unpackUnknown(body) as unknown[]);
  // msgpackr picks minimal widths, so widen the version field by hand (fixint 1 → uint8 1).
  if (bytes[0] === 0x9a && bytes[1] === 0x01) return Buffer.concat([Buffer.from([0x9a, 0xcc, 0x01]), bytes.subarray(2)]);
  throw new Error('unexpected ticket encoding');
}

function flip(bytes: Uint8Array): Buffer {
  const copy = Buffer.from(bytes);
  copy[0] = (copy[0] ?? 0) ^ 1;
  return copy;
}
