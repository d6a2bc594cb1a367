import type { PeerLink } from './link-manager.js';

/**
 * Interactive traffic first. A file transfer fills a link (and both peers' CPUs) as fast as it can;
 * a chat message on the same link would wait behind it. So whenever chat crosses a link, bulk
 * senders on that link hold back for a moment: the data already in flight drains, both event loops
 * get to the chat message (and its ack) quickly, and the transfer goes on right after. People chat
 * a few messages a minute, so the cost to a transfer is negligible; the gain is a chat round trip
 * during a transfer close to its idle value.
 */
export const INTERACTIVE_HOLD_MS = 25;

const interactiveUntil = new WeakMap<PeerLink, number>();

/** Chat (or its ack) went over this link now. */
export function markInteractive(link: PeerLink, nowMs = performance.now()): void {
  interactiveUntil.set(link, nowMs + INTERACTIVE_HOLD_MS);
}

/** How long a bulk sender should still hold back on this link (0: go). */
export function bulkHoldMs(link: PeerLink, nowMs = performance.now()): number {
  return Math.max(0, (interactiveUntil.get(link) ?? 0) - nowMs);
}
