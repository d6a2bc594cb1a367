import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  fingerprint,
  issueRevocation,
  issueTicket,
  verifyRevocation,
  writePrivateFile,
  type Identity,
  type Logger,
  type RevocationReason,
  type SignedRevocation,
  type SignedTicket,
} from '../common/index.js';
import type { LiveSession } from './sessions.js';

const REVOCATIONS_FILE = 'revocations.json';

/**
 * Issues session tickets and revocations with the server key, and remembers the revocations that
 * still matter: a revocation is kept until every ticket it could cancel has expired anyway. They are
 * saved in the data dir, so a restart does not resurrect a kicked session's ticket.
 */
export class TicketAuthority {
  readonly kid: string;
  readonly #identity: Identity;
  readonly #lifetimeMs: number;
  readonly #path: string;
  readonly #log: Logger;
  #revocations: { revocation: SignedRevocation; sessionId: string; keepUntilMs: number }[] = [];

  constructor(options: { identity: Identity; dataDir: string; ticketLifetimeMs: number; logger: Logger }) {
    this.#identity = options.identity;
    this.kid = fingerprint(options.identity.signing.publicKey);
    this.#lifetimeMs = options.ticketLifetimeMs;
    this.#path = join(options.dataDir, REVOCATIONS_FILE);
    this.#log = options.logger;
    this.#load();
  }

  issue(session: LiveSession, generation: number, nowMs = Date.now()): SignedTicket {
    return issueTicket(this.#identity.signing, {
      kid: this.kid,
      user: session.user,
      sid: session.sessionId,
      dhPk: session.dhPk,
      sigPk: session.sigPk,
      notBeforeMs: nowMs,
      notAfterMs: nowMs + this.#lifetimeMs,
      generation,
    });
  }

  revoke(session: LiveSession, reason: RevocationReason, nowMs = Date.now()): SignedRevocation {
    const revocation = issueRevocation(this.#identity.signing, {
      kid: this.kid,
      user: session.user,
      sessionId: session.sessionId,
      issuedAtMs: nowMs,
      reason,
    });
    this.#revocations.push({ revocation, sessionId: session.sessionId, keepUntilMs: nowMs + this.#lifetimeMs });
    this.#save(nowMs);
    return revocation;
  }

  isRevoked(sessionId: string): boolean {
    return this.#revocations.some((r) => r.sessionId === sessionId);
  }

  /** The revocations a newly logged-in peer must know about. */
  active(nowMs = Date.now()): SignedRevocation[] {
    this.#prune(nowMs);
    return this.#revocations.map((r) => r.revocation);
  }

  #prune(nowMs: number): void {
    this.#revocations = this.#revocations.filter((r) => r.keepUntilMs > nowMs);
  }

  #save(nowMs: number): void {
    this.#prune(nowMs);
    const data = this.#revocations.map((r) => ({
      body: Buffer.from(r.revocation.body).toString('base64'),
      sig: Buffer.from(r.revocation.sig).toString('base64'),
      keepUntilMs: r.keepUntilMs,
    }));
    try {
      writePrivateFile(this.#path, JSON.stringify(data));
    } catch (err) {
      this.#log.error('revocations.save_failed', { message: (err as Error).message });
    }
  }

  /** Reads saved revocations, keeping only well-formed ones signed by this server's key. */
  #load(): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.#path, 'utf8'));
    } catch {
      return; // none saved yet, or unreadable: revocations are an optimisation over expiry
    }
    if (!Array.isArray(parsed)) return;
    for (const item of parsed as unknown[]) {
      if (typeof item !== 'object' || item === null) continue;
      const { body, sig, keepUntilMs } = item as Record<string, unknown>;
      if (typeof body !== 'string' || typeof sig !== 'string' || typeof keepUntilMs !== 'number') continue;
      const revocation = { body: new Uint8Array(Buffer.from(body, 'base64')), sig: new Uint8Array(Buffer.from(sig, 'base64')) };
      try {
        const claims = verifyRevocation(revocation, this.#identity.signing.publicKey);
        this.#revocations.push({ revocation, sessionId: claims.sessionId, keepUntilMs });
      } catch {
        this.#log.warn('revocations.invalid_entry');
      }
    }
  }
}
