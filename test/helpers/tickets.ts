import { fingerprint, generateIdentity, issueTicket, type Identity, type KeyPair, type SignedTicket } from '../../common/index.js';
import type { LinkCredentials } from '../../peer/links/link-handshake.js';

export const NOW = 1_764_115_200_000;
export const HOUR = 60 * 60_000;

export interface Device {
  user: string;
  sessionId: string;
  identity: Identity;
  ticket: SignedTicket;
}

/** A device with a ticket signed by `server`, as if it had logged in (no rendezvous server needed). */
export function device(server: KeyPair, user: string, options: { ticketFor?: Identity; validFrom?: number; sessionId?: string } = {}): Device {
  const identity = generateIdentity();
  const subject = options.ticketFor ?? identity;
  const notBeforeMs = options.validFrom ?? NOW - 1_000;
  const sessionId = options.sessionId ?? `${user}-session`;
  const ticket = issueTicket(server, {
    kid: fingerprint(server.publicKey),
    user,
    sid: sessionId,
    dhPk: subject.dh.publicKey,
    sigPk: subject.signing.publicKey,
    notBeforeMs,
    notAfterMs: notBeforeMs + HOUR,
    generation: 1,
  });
  return { user, sessionId, identity, ticket };
}

export function credentials(server: KeyPair, me: Device, overrides: Partial<LinkCredentials> = {}): LinkCredentials {
  return {
    identity: me.identity,
    ticket: () => me.ticket,
    serverSigningKey: server.publicKey,
    serverNow: () => NOW,
    isRevoked: () => false,
    ...overrides,
  };
}
