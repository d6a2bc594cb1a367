import { describe, expect, it } from 'vitest';
import type { PeerLink } from '../../../../peer/links/link-manager.js';
import { bulkHoldMs, INTERACTIVE_HOLD_MS, markInteractive } from '../../../../peer/links/link-priority.js';

const link = (): PeerLink => ({}) as PeerLink; // only its identity is used

describe('link priority', () => {
  it('holds bulk data back on a link for a moment after chat crossed it, and only on that link', () => {
    const chatty = link();
    const quiet = link();
    markInteractive(chatty, 1_000);
    expect(bulkHoldMs(chatty, 1_000)).toBe(INTERACTIVE_HOLD_MS);
    expect(bulkHoldMs(chatty, 1_010)).toBe(INTERACTIVE_HOLD_MS - 10);
    expect(bulkHoldMs(chatty, 1_000 + INTERACTIVE_HOLD_MS)).toBe(0);
    expect(bulkHoldMs(quiet, 1_000)).toBe(0);
  });
});
