import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_LOG_BATCH } from '../../../../common/index.js';
import { ActivityOutbox } from '../../../../peer/rendezvous/activity-outbox.js';
import { tempDir } from '../../../helpers/rendezvous.js';

describe('ActivityOutbox', () => {
  it('keeps an event until its id is acknowledged', () => {
    const outbox = new ActivityOutbox();
    const event = outbox.record('link.up', 'peer=bob', 1_000);
    expect(outbox.takeBatch()).toEqual([event]);
    expect(outbox.takeBatch()).toEqual([]); // in flight: not sent twice on one connection
    outbox.acknowledge([event.id]);
    expect(outbox.size).toBe(0);
  });

  it('sends in-flight events again after the connection drops', () => {
    const outbox = new ActivityOutbox();
    const event = outbox.record('message.sent', 'to=carol', 1);
    outbox.takeBatch();
    outbox.requeue();
    expect(outbox.takeBatch().map((e) => e.id)).toEqual([event.id]);
  });

  it(`cuts batches at ${MAX_LOG_BATCH} events`, () => {
    const outbox = new ActivityOutbox();
    for (let i = 0; i < MAX_LOG_BATCH + 10; i++) outbox.record('message.sent', `n=${i}`, i);
    expect(outbox.takeBatch()).toHaveLength(MAX_LOG_BATCH);
    expect(outbox.takeBatch()).toHaveLength(10);
  });

  it('drops the oldest events beyond its bound', () => {
    const outbox = new ActivityOutbox({ maxEvents: 3 });
    for (let i = 0; i < 5; i++) outbox.record('e', `n=${i}`, i);
    expect(outbox.takeBatch().map((e) => e.detail)).toEqual(['n=2', 'n=3', 'n=4']);
  });

  it('survives a restart of the peer when given a file', async () => {
    const path = join(tempDir(), 'outbox.json');
    const first = new ActivityOutbox({ path });
    const kept = first.record('file.completed', 'bytes=10', 5);
    const acked = first.record('link.down', 'peer=bob', 6);
    first.acknowledge([acked.id]);
    first.flush();
    await first.saved();
    const second = new ActivityOutbox({ path });
    expect(second.takeBatch()).toEqual([kept]);
  });
});
