import { describe, expect, it } from 'vitest';
import { encodeMessage, MAX_DIRECTORY_ENTRIES, MAX_ENDPOINTS, MAX_OFFLINE_ENTRIES, DEFAULTS, type DirectoryEntry } from '../../../common/index.js';
import { directoryUpdates } from '../../../rendezvous/directory.js';

function entry(i: number): DirectoryEntry {
  return {
    user: `user-${String(i).padStart(26, 'x')}`,
    sessionId: `session-${i}`.padEnd(64, 's'),
    addresses: Array.from({ length: MAX_ENDPOINTS }, (_, j) => ({ host: `fe80::${j}:${i}`.padEnd(64, '0'), port: 65_535 })),
    dhPk: new Uint8Array(32).fill(1),
    sigPk: new Uint8Array(32).fill(2),
    since: Number.MAX_SAFE_INTEGER,
  };
}

describe('directoryUpdates', () => {
  it(`splits online entries into messages of at most ${MAX_DIRECTORY_ENTRIES}, in order`, () => {
    const online = Array.from({ length: 2 * MAX_DIRECTORY_ENTRIES + 1 }, (_, i) => entry(i));
    const messages = directoryUpdates(online, []);
    expect(messages).toHaveLength(3);
    const sent = messages.flatMap((m) => (m.type === 'directory.update' ? m.online : []));
    expect(sent.map((e) => e.sessionId)).toEqual(online.map((e) => e.sessionId));
  });

  it('keeps every message within one frame even with the largest entries', () => {
    const online = Array.from({ length: MAX_DIRECTORY_ENTRIES }, (_, i) => entry(i));
    const offline = Array.from({ length: MAX_OFFLINE_ENTRIES }, (_, i) => ({ user: 'u'.repeat(32), sessionId: `${i}`.padEnd(64, 's') }));
    for (const message of directoryUpdates(online, offline)) {
      // The frame carries kind byte + message + tag within maxFrameBytes.
      expect(encodeMessage(message).length + 1 + 16).toBeLessThanOrEqual(DEFAULTS.maxFrameBytes);
    }
  });

  it('sends nothing for an empty change', () => {
    expect(directoryUpdates([], [])).toEqual([]);
  });
});
