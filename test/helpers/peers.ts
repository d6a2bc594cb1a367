import { onTestFinished } from 'vitest';
import { Peer, type PeerEvents, type PeerOptions } from '../../peer/peer.js';
import type { RendezvousServer } from '../../rendezvous/server.js';
import { tempDir, TEST_PASSWORD } from './rendezvous.js';

/** Short timers so reconnection and redial happen within a test's budget. */
export const FAST_PEER_TUNING = Object.freeze({
  reconnectBackoff: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0.2 },
  redialInitialDelayMs: 50,
  redialMaxDelayMs: 500,
});

/**
 * A logged-in Peer on 127.0.0.1 (mDNS off, as on any loopback setup) against a test server, with
 * its own temp data dir unless given; closed (not logged out) when the test ends.
 */
export async function startPeer(server: RendezvousServer | { port: number }, user: string, options: Partial<PeerOptions> = {}): Promise<Peer> {
  const port = 'info' in server ? server.info.port : server.port;
  const peer = await Peer.connect({
    user,
    password: TEST_PASSWORD,
    dataDir: tempDir(`sala-peer-${user}-`),
    server: { host: '127.0.0.1', port },
    isMdnsEnabled: false,
    listenHost: '127.0.0.1',
    tuning: FAST_PEER_TUNING,
    ...options,
  });
  peer.on('error', () => undefined);
  onTestFinished(() => peer.close());
  return peer;
}

/** The next `event` from `peer` that matches, or a rejection naming what did not come in time. */
export function nextEvent<K extends keyof PeerEvents>(
  peer: Peer,
  event: K,
  predicate: (...args: PeerEvents[K]) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<PeerEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      peer.off(event, listener as never);
      reject(new Error(`${peer.user}: no ${String(event)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args: PeerEvents[K]): void => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      peer.off(event, listener as never);
      resolve(args);
    };
    peer.on(event, listener as never);
  });
}
