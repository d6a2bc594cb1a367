import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from '../wire/msgpack.js';
import { field, parseShape } from '../wire/schema.js';
import type { KeyPair } from './noise/handshake-state.js';
import { signDetached, verifyDetached } from './signing.js';

/**
 * The server's signed word that a session is over (kick, disable, password change, logout). Peers
 * enforce it — drop that session's links, refuse its ticket — and pass it on, so it reaches peers
 * that cannot reach the server (SECURITY.md C3). Like tickets: an array body, signature over the
 * received bytes, domain "sala/v1/revoke\0".
 */
const REVOCATION_DOMAIN = 'sala/v1/revoke\0';

export type RevocationReason = 'kick' | 'disable' | 'password' | 'logout' | 'expired';
const REASONS: readonly RevocationReason[] = ['kick', 'disable', 'password', 'logout', 'expired'];

export interface RevocationClaims {
  kid: string;
  user: string;
  sessionId: string;
  issuedAtMs: number;
  reason: RevocationReason;
}

export interface SignedRevocation {
  body: Uint8Array;
  sig: Uint8Array;
}

export function issueRevocation(serverSigning: KeyPair, claims: RevocationClaims): SignedRevocation {
  const body = packMessage([1, 'revoke', claims.kid, claims.user, claims.sessionId, claims.issuedAtMs, claims.reason]);
  return { body, sig: signDetached(serverSigning.privateKey, REVOCATION_DOMAIN, body) };
}

const BODY_SHAPE = {
  kid: field.string({ maxBytes: 64 }),
  user: field.string({ maxBytes: 64 }),
  sessionId: field.string({ maxBytes: 64 }),
  issuedAtMs: field.uint(),
  reason: field.oneOf(...REASONS),
} as const;

/** Returns the claims of a revocation signed by `serverSigningKey`, or throws SALA_E_TICKET_INVALID. */
export function verifyRevocation(revocation: SignedRevocation, serverSigningKey: Uint8Array): RevocationClaims {
  const refuse = (why: string): SalaError => new SalaError('SALA_E_TICKET_INVALID', `A revocation was refused: ${why}.`);
  if (!verifyDetached(serverSigningKey, REVOCATION_DOMAIN, revocation.body, revocation.sig)) {
    throw refuse('it is not signed by this server');
  }
  let value: unknown;
  try {
    value = unpackUnknown(revocation.body);
  } catch {
    throw refuse('its body is malformed');
  }
  if (!Array.isArray(value) || value.length !== 7 || value[0] !== 1 || value[1] !== 'revoke') {
    throw refuse('its body is not a version 1 revocation');
  }
  const [, , kid, user, sessionId, issuedAtMs, reason] = value as unknown[];
  try {
    return parseShape(BODY_SHAPE, { kid, user, sessionId, issuedAtMs, reason }, 'revocation');
  } catch {
    throw refuse('its body has a malformed field');
  }
}
