import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { silentLogger, type WireMessage } from '../../../../common/index.js';
import type { PeerLink } from '../../../../peer/links/link-manager.js';
import type { FileContext, FileEvents } from '../../../../peer/files/file-context.js';
import { IncomingTransfers } from '../../../../peer/files/incoming-transfers.js';
import { tempDir } from '../../../helpers/rendezvous.js';

const KiB = 1024;

/** A receiver with a hand-driven link from alice: what it sends is recorded with the event-loop turn it went out in. */
function receiver(windowBytes: number) {
  let turn = 0;
  let ticker = setImmediate(function tick() {
    turn += 1;
    ticker = setImmediate(tick);
  });
  onTestFinished(() => clearImmediate(ticker));
  const sent: { message: WireMessage; turn: number }[] = [];
  const link = {
    peer: { user: 'alice' },
    messages: {
      isClosed: false,
      send: (message: WireMessage) => void sent.push({ message, turn }),
      destroy: () => {
        throw new Error('the link was closed');
      },
    },
  } as unknown as PeerLink;
  const received: FileEvents['file.received'][0][] = [];
  const downloadsDir = tempDir('sala-downloads-');
  const dataDir = tempDir('sala-data-');
  const context: FileContext = {
    me: 'bob',
    path: (name) => join(dataDir, name),
    linkTo: () => link,
    requestLink: () => undefined,
    emit: (event, ...args) => {
      if (event === 'file.received') received.push(args[0] as FileEvents['file.received'][0]);
    },
    record: () => undefined,
    offerTimeoutMs: 60_000,
    logger: silentLogger,
  };
  const incoming = new IncomingTransfers(context, { downloadsDir, isAutoAccept: true, maxFileBytes: 2 ** 40, windowBytes });
  onTestFinished(() => incoming.close());
  const credits = () => sent.filter((s) => s.message.type === 'file.credit') as { message: { bytes: number }; turn: number }[];
  const grantedTo = () => credits().reduce((sum, c) => sum + c.message.bytes, 0);
  return { incoming, link, sent, received, credits, grantedTo };
}

describe('IncomingTransfers credit', () => {
  it('grants at most once per event-loop turn however many writes complete in it, and still grants the whole file', async () => {
    const { incoming, link, sent, received, credits, grantedTo } = receiver(256 * KiB);
    const content = randomBytes(4 * 1024 * KiB);
    const sha256 = createHash('sha256').update(content).digest();
    const transferId = 'coalesce-1';
    incoming.onMessage(link, { type: 'file.offer', transferId, name: 'a.bin', size: content.length, sha256 });
    await vi.waitFor(() => expect(sent.some((s) => s.message.type === 'file.accept')).toBe(true));
    let offset = 0;
    let chunks = 0;
    while (offset < content.length) {
      await vi.waitFor(() => expect(grantedTo()).toBeGreaterThan(offset), { interval: 1, timeout: 5_000 });
      // Everything granted at once, as a fast sender does: the file stream completes them in batches.
      for (const end = grantedTo(); offset < end; offset += 64 * KiB, chunks += 1) {
        incoming.onMessage(link, { type: 'file.chunk', transferId, offset, data: content.subarray(offset, offset + 64 * KiB) });
      }
    }
    incoming.onMessage(link, { type: 'file.done', transferId });
    await vi.waitFor(() => expect(received).toHaveLength(1));
    expect(grantedTo()).toBe(content.length);
    const turns = credits().map((c) => c.turn);
    expect(new Set(turns).size).toBe(turns.length);
    expect(credits().length).toBeLessThan(chunks);
    expect(sent.at(-1)?.message).toEqual({ type: 'file.complete', transferId });
    expect(readFileSync(received[0]?.path ?? '').equals(content)).toBe(true);
  });
});
