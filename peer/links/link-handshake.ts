import type { Socket } from 'node:net';
import {
  acceptSecure,
  connectSecure,
  field,
  packMessage,
  parseShape,
  SalaError,
  TICKET_FIELD,
  unpackUnknown,
  verifyTicket,
  type Identity,
  type SecureChannel,
  type SignedTicket,
  type TicketClaims,
} from '../../common/index.js';

/**
 * What a peer needs to open or accept a direct link: its device keys, its current session ticket,
 * and what it knows from the rendezvous server (its key, server time, revocations). It works while
 * the server is down: tickets are checked with the server's public key alone.
 */
export interface LinkCredentials {
  identity: Identity;
  /** The current ticket (renewed every 30 minutes, so read at each handshake). */
  ticket: () => SignedTicket;
  serverSigningKey: Uint8Array;
  /** Server time now (SECURITY.md H4: laptops keep wrong time). */
  serverNow: () => number;
  isRevoked: (sessionId: string) => boolean;
}

const LINK_HELLO_SHAPE = { v: field.uint({ max: 255 }), ticket: TICKET_FIELD } as const;

function helloFor(credentials: LinkCredentials): Buffer {
  const ticket = credentials.ticket();
  return packMessage({ v: 1, ticket: { body: ticket.body, sig: ticket.sig } });
}

/**
 * Checks the other side's ticket against the handshake (SECURITY.md §2b and C2): signed by our
 * server, valid by server time, not revoked, issued for the very X25519 key the handshake
 * authenticated (so a stolen ticket is useless without the device key), and — for the dialler — for
 * the user it meant to reach (so Mallory cannot answer at "bob"'s address with her own ticket).
 */
function checkHello(payload: Uint8Array, remoteStatic: Uint8Array, credentials: LinkCredentials, expectedUser?: string): TicketClaims {
  let ticket: SignedTicket;
  try {
    const hello = parseShape(LINK_HELLO_SHAPE, unpackUnknown(payload), 'link');
    if (hello.v !== 1) throw new Error(`unsupported link hello version ${hello.v}`);
    ticket = hello.ticket;
  } catch (err) {
    throw new SalaError('SALA_E_TICKET_INVALID', 'The other side presented no valid session ticket.', { cause: err });
  }
  return verifyTicket(ticket, {
    serverSigningKey: credentials.serverSigningKey,
    nowMs: credentials.serverNow(),
    expectedDhPk: remoteStatic,
    ...(expectedUser === undefined ? {} : { expectedUser }),
    isRevoked: (sid) => credentials.isRevoked(sid),
  });
}

export interface Link {
  channel: SecureChannel;
  /** Who is on the other end, as the server vouched for them. */
  peer: TicketClaims;
}

/** Dials a peer that should be `expectedUser`; refuses anyone else before revealing our ticket in msg 3. */
export async function dialLink(options: {
  host: string;
  port: number;
  expectedUser: string;
  credentials: LinkCredentials;
  signal?: AbortSignal;
  handshakeTimeoutMs?: number;
}): Promise<Link> {
  let peer: TicketClaims | undefined;
  const channel = await connectSecure({
    host: options.host,
    port: options.port,
    purpose: 'link',
    staticKeyPair: options.credentials.identity.dh,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    verifyRemote: ({ payload, remoteStatic }) => {
      peer = checkHello(payload, remoteStatic, options.credentials, options.expectedUser);
    },
    payload: () => helloFor(options.credentials),
  });
  if (peer === undefined) {
    channel.destroy();
    throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
  }
  return { channel, peer };
}

/** Accepts a link from any logged-in peer of our server. */
export async function acceptLink(
  socket: Socket,
  options: { credentials: LinkCredentials; handshakeTimeoutMs?: number },
): Promise<Link> {
  let peer: TicketClaims | undefined;
  const channel = await acceptSecure(socket, {
    purpose: 'link',
    staticKeyPair: options.credentials.identity.dh,
    ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    payload: () => helloFor(options.credentials),
    verifyRemote: ({ payload, remoteStatic }) => {
      peer = checkHello(payload, remoteStatic, options.credentials);
    },
  });
  if (peer === undefined) {
    channel.destroy();
    throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
  }
  return { channel, peer };
}
