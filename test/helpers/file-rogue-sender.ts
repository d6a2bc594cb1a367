/**
 * A hand-driven file sender for bad-input tests: a real LinkManager with a real session (logged in
 * to the same RendezvousServer), linked to a Peer, that sends `file.*` messages exactly as the test
 * says — honouring the receiver's credit, or not.
 */
import { createHash, randomUUID } from 'node:crypto';
import { onTestFinished } from 'vitest';
import { generateIdentity, MAX_FILE_CHUNK_BYTES, type MessageOf, type MessageType, type WireMessage } from '../../common/index.js';
import { LinkManager, type PeerLink } from '../../peer/links/link-manager.js';
import type { Peer } from '../../peer/peer.js';
import type { RendezvousServer } from '../../rendezvous/server.js';
import { login, register } from './rendezvous.js';

export function sha256Of(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Every message a link delivered, in order, and a way to await the next one of a kind. */
export class LinkInbox {
  readonly received: WireMessage[] = [];
  readonly #taken = new Set<number>();
  readonly #waiters = new Set<() => void>();

  constructor(link: PeerLink) {
    link.messages.on('message', (message) => {
      this.received.push(message);
      for (const wake of [...this.#waiters]) wake();
    });
  }

  /** The first not yet taken message of `type` that matches (already here or still to come). */
  next<T extends MessageType>(type: T, predicate: (message: MessageOf<T>) => boolean = () => true, timeoutMs = 10_000): Promise<MessageOf<T>> {
    return new Promise((resolve, reject) => {
      const look = (): boolean => {
        for (let i = 0; i < this.received.length; i++) {
          const message = this.received[i] as WireMessage;
          if (this.#taken.has(i) || message.type !== type || !predicate(message as MessageOf<T>)) continue;
          this.#taken.add(i);
          resolve(message as MessageOf<T>);
          return true;
        }
        return false;
      };
      if (look()) return;
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`no ${type} arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = (): void => {
        if (!look()) return;
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      this.#waiters.add(wake);
    });
  }

  /** Credit granted so far for a transfer (the sum of its `file.credit` messages). */
  creditFor(transferId: string): number {
    let total = 0;
    for (const message of this.received) if (message.type === 'file.credit' && message.transferId === transferId) total += message.bytes;
    return total;
  }

  /** Waits until the receiver has granted at least `bytes` of credit in total. */
  async waitForCredit(transferId: string, bytes: number, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.creditFor(transferId) < bytes) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`only ${this.creditFor(transferId)} of ${bytes} bytes of credit granted for ${transferId}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }
}

export interface RogueSender {
  readonly user: string;
  readonly link: PeerLink;
  readonly links: LinkManager;
  readonly inbox: LinkInbox;
  /** Sends `file.offer`; the announced size and hash default to those of `content`. */
  offer(name: string, content: Uint8Array, claims?: { size?: number; sha256?: Uint8Array; transferId?: string }): string;
  /** Sends `data` as `file.chunk` messages from `offset`, split at 64 KiB, credit or not. */
  chunks(transferId: string, offset: number, data: Uint8Array): void;
  done(transferId: string): void;
  /** What an honest sender does after its offer: waits for accept, sends within credit, then `file.done`. */
  sendAccepted(transferId: string, content: Uint8Array): Promise<void>;
}

/**
 * Registers and logs in `user` on `server`, listens for links on 127.0.0.1 and links to `target`
 * with that session's real ticket. Closed when the test ends.
 */
export async function rogueSender(server: RendezvousServer, user: string, target: Peer): Promise<RogueSender> {
  await register(server, user);
  const identity = generateIdentity();
  const client = await login(server, user, { identity });
  const serverSigningKey = client.serverSigningKey;
  const sessionId = client.sessionId;
  if (serverSigningKey === undefined || sessionId === undefined) throw new Error(`${user}: logged in without a session`);
  const links = await LinkManager.listen({
    credentials: {
      identity,
      ticket: () => {
        const ticket = client.ticket;
        if (ticket === undefined) throw new Error(`${user} has no ticket`);
        return ticket;
      },
      serverSigningKey,
      serverNow: () => client.clock.now(),
      isRevoked: () => false,
    },
    mySessionId: () => sessionId,
    host: '127.0.0.1',
  });
  onTestFinished(() => links.close());
  const link = await links.connect(target.user, target.sessionId, [{ host: '127.0.0.1', port: target.listen.port }]);
  link.messages.on('error', () => undefined);
  const inbox = new LinkInbox(link);

  const chunks = (transferId: string, offset: number, data: Uint8Array): void => {
    for (let at = 0; at < data.length; at += MAX_FILE_CHUNK_BYTES) {
      link.messages.send({ type: 'file.chunk', transferId, offset: offset + at, data: data.subarray(at, at + MAX_FILE_CHUNK_BYTES) });
    }
  };
  return {
    user,
    link,
    links,
    inbox,
    offer(name, content, claims = {}) {
      const transferId = claims.transferId ?? randomUUID();
      link.messages.send({ type: 'file.offer', transferId, name, size: claims.size ?? content.length, sha256: claims.sha256 ?? sha256Of(content) });
      return transferId;
    },
    chunks,
    done(transferId) {
      link.messages.send({ type: 'file.done', transferId });
    },
    async sendAccepted(transferId, content) {
      const accept = await inbox.next('file.accept', (m) => m.transferId === transferId);
      for (let sent = accept.offset; sent < content.length; ) {
        await inbox.waitForCredit(transferId, sent + 1 - accept.offset);
        const upTo = Math.min(content.length, accept.offset + inbox.creditFor(transferId), sent + MAX_FILE_CHUNK_BYTES);
        chunks(transferId, sent, content.subarray(sent, upTo));
        sent = upTo;
      }
      link.messages.send({ type: 'file.done', transferId });
    },
  };
}
