import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from '../wire/msgpack.js';
import { field, parseShape } from '../wire/schema.js';
import type { KeyPair } from './noise/handshake-state.js';
import { signDetached, verifyDetached } from './signing.js';

/**
 * A session ticket: the rendezvous server's signed statement that a device (its X25519 and Ed25519
 * keys) is logged in as a user for a while. Peers show it inside their link handshake; whoever
 * checks it needs only the server's public key, so it works while the server is down.
 *
 * The body is a MessagePack array (not a map: no key order or duplicate-key questions) and the
 * signature covers its exact received bytes, never a re-encoding (SECURITY.md C2: msgpack is not
 * canonical). Domain-separated: Ed25519(serverSk, "sala/v1/ticket\0" ‖ body).
 */
const TICKET_DOMAIN = 'sala/v1/ticket\0';
const TICKET_VERSION = 1;
/** Tolerated difference between clocks that are already corrected by the server-time offset. */
export const TICKET_CLOCK_SKEW_MS = 30_000;

export interface TicketClaims {
  /** The issuing server's key fingerprint (a key id: which server key signed this). */
  kid: string;
  user: string;
  sid: string;
  dhPk: Uint8Array;
  sigPk: Uint8Array;
  notBeforeMs: number;
  notAfterMs: number;
  /** Increases with each renewal of the same session; revocations name the generations they end. */
  generation: number;
}

export interface SignedTicket {
  body: Uint8Array;
  sig: Uint8Array;
}

export function issueTicket(serverSigning: KeyPair, claims: TicketClaims): SignedTicket {
  const body = packMessage([
    TICKET_VERSION,
    'ticket',
    claims.kid,
    claims.user,
    claims.sid,
    claims.dhPk,
    claims.sigPk,
    claims.notBeforeMs,
    claims.notAfterMs,
    claims.generation,
  ]);
  return { body, sig: signDetached(serverSigning.privateKey, TICKET_DOMAIN, body) };
}

export interface TicketCheck {
  /** The server's Ed25519 public key the ticket must be signed by. */
  serverSigningKey: Uint8Array;
  /** "Now" in server time (local clock plus the offset learned at login). */
  nowMs: number;
  /** The X25519 static key the handshake authenticated: the ticket must be for it. */
  expectedDhPk?: Uint8Array;
  /** The user the caller meant to reach (the dialler knows whom it dialled). */
  expectedUser?: string;
  /** True when the session (or this generation of it) has been revoked. */
  isRevoked?: (sid: string, generation: number) => boolean;
}

function invalid(why: string): SalaError {
  return new SalaError('SALA_E_TICKET_INVALID', `The session ticket was refused: ${why}.`);
}

/**
 * Verifies a ticket and returns its claims, or throws SALA_E_TICKET_INVALID. The signature is
 * checked first, over the received bytes; only then is the body decoded.
 */
export function verifyTicket(ticket: SignedTicket, check: TicketCheck): TicketClaims {
  if (!verifyDetached(check.serverSigningKey, TICKET_DOMAIN, ticket.body, ticket.sig)) {
    throw invalid('it is not signed by this server');
  }
  const claims = decodeTicketBody(ticket.body);
  if (check.nowMs + TICKET_CLOCK_SKEW_MS < claims.notBeforeMs) throw invalid('it is not valid yet');
  if (check.nowMs - TICKET_CLOCK_SKEW_MS >= claims.notAfterMs) throw invalid('it has expired');
  if (check.expectedDhPk !== undefined && !Buffer.from(check.expectedDhPk).equals(Buffer.from(claims.dhPk))) {
    throw invalid('it was issued for another device key');
  }
  if (check.expectedUser !== undefined && check.expectedUser !== claims.user) {
    throw invalid(`it is for "${claims.user}", not "${check.expectedUser}"`);
  }
  if (check.isRevoked?.(claims.sid, claims.generation) === true) throw invalid('the session was revoked');
  return claims;
}

const BODY_SHAPE = {
  kid: field.string({ maxBytes: 64 }),
  user: field.string({ maxBytes: 64 }),
  sid: field.string({ maxBytes: 64 }),
  dhPk: field.bytes({ maxBytes: 32, exactBytes: 32 }),
  sigPk: field.bytes({ maxBytes: 32, exactBytes: 32 }),
  notBeforeMs: field.uint(),
  notAfterMs: field.uint(),
  generation: field.uint(),
} as const;

function decodeTicketBody(body: Uint8Array): TicketClaims {
  let value: unknown;
  try {
    value = unpackUnknown(body);
  } catch {
    throw invalid('its body is malformed');
  }
  if (!Array.isArray(value) || value.length !== 10 || value[0] !== TICKET_VERSION || value[1] !== 'ticket') {
    throw invalid('its body is not a version 1 ticket');
  }
  const [, , kid, user, sid, dhPk, sigPk, notBeforeMs, notAfterMs, generation] = value as unknown[];
  try {
    return parseShape(BODY_SHAPE, { kid, user, sid, dhPk, sigPk, notBeforeMs, notAfterMs, generation }, 'ticket');
  } catch {
    throw invalid('its body has a malformed field');
  }
}
