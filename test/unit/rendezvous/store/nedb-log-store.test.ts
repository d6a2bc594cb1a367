import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../../../rendezvous/store/store.js';
import { expectSalaError, logRecord, openTestStore, tempDataDir } from './temp-store.js';

const at = (minute: number): string => new Date(Date.UTC(2024, 2, 1, 8, minute)).toISOString();
const ids = (records: readonly LogRecord[]): string[] => records.map((r) => r.id);

describe('NeDB log store: append', () => {
  it('stores a new batch and reports how many records were new', async () => {
    const { store } = await openTestStore(tempDataDir());
    expect(await store.logs.append([logRecord('a'), logRecord('b')])).toEqual({ stored: 2 });
    expect(ids(await store.logs.query({}))).toEqual(['a', 'b']);
  });

  it('stores nothing the second time the same batch is appended', async () => {
    const { store } = await openTestStore(tempDataDir());
    const batch = [logRecord('a'), logRecord('b'), logRecord('c')];
    expect(await store.logs.append(batch)).toEqual({ stored: 3 });
    expect(await store.logs.append(batch)).toEqual({ stored: 0 });
    expect(await store.logs.query({})).toHaveLength(3);
  });

  it('stores only the new records of a batch that overlaps a stored one', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.logs.append([logRecord('a'), logRecord('b')]);
    expect(await store.logs.append([logRecord('b'), logRecord('c')])).toEqual({ stored: 1 });
    expect(ids(await store.logs.query({}))).toEqual(['a', 'b', 'c']);
  });

  it('stores an id repeated inside one batch once, keeping its first copy', async () => {
    const { store } = await openTestStore(tempDataDir());
    const batch = [logRecord('a', { detail: 'first' }), logRecord('b'), logRecord('a', { detail: 'second' })];
    expect(await store.logs.append(batch)).toEqual({ stored: 2 });
    const stored = await store.logs.query({});
    expect(ids(stored)).toEqual(['a', 'b']);
    expect(stored[0]?.detail).toBe('first');
  });

  it('stores each id once when 20 overlapping batches are appended concurrently', async () => {
    const { store } = await openTestStore(tempDataDir());
    // Batch i holds ids i*3 … i*3+9: neighbours overlap by 7, so the appends race on most ids.
    const batches = Array.from({ length: 20 }, (_, i) =>
      Array.from({ length: 10 }, (_, j) => logRecord(`e${String(i * 3 + j).padStart(3, '0')}`, { at: at(i * 3 + j) })),
    );
    const distinct = new Set(batches.flat().map((r) => r.id));
    const results = await Promise.all(batches.map((batch) => store.logs.append(batch)));
    expect(results.reduce((sum, r) => sum + r.stored, 0)).toBe(distinct.size);
    const stored = await store.logs.query({});
    expect(ids(stored)).toEqual([...distinct].sort());
  });

  it('accepts an empty batch and stores nothing', async () => {
    const { store } = await openTestStore(tempDataDir());
    expect(await store.logs.append([])).toEqual({ stored: 0 });
  });

  it('refuses a batch holding a record with an unparseable time and stores none of it', async () => {
    const { store } = await openTestStore(tempDataDir());
    await expectSalaError(
      store.logs.append([logRecord('good'), logRecord('bad', { at: 'Tue, 01 Mar 2024 08:00:00 GMT' })]),
      'SALA_E_PROTOCOL_INVALID_FIELD',
    );
    expect(await store.logs.query({})).toEqual([]);
  });

  it('refuses a record with an unknown source with SALA_E_PROTOCOL_INVALID_FIELD', async () => {
    const { store } = await openTestStore(tempDataDir());
    const record = { ...logRecord('a'), source: 'admin' } as unknown as LogRecord;
    await expectSalaError(store.logs.append([record]), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('stores the time in canonical UTC form whatever offset it was given in', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.logs.append([logRecord('a', { at: '2024-03-01T09:30:00+01:00' })]);
    expect((await store.logs.query({}))[0]?.at).toBe('2024-03-01T08:30:00.000Z');
  });

  it('accepts the expanded-year form toISOString gives for the last valid date', async () => {
    const { store } = await openTestStore(tempDataDir());
    const last = new Date(8.64e15).toISOString();
    expect(await store.logs.append([logRecord('far', { at: last })])).toEqual({ stored: 1 });
    expect((await store.logs.query({}))[0]?.at).toBe(last);
  });
});

describe('NeDB log store: query', () => {
  async function storeWithTimeline() {
    const opened = await openTestStore(tempDataDir());
    // Appended out of order on purpose: the query must sort.
    await opened.store.logs.append([
      logRecord('m20-alice', { at: at(20), user: 'alice' }),
      logRecord('m00-bob', { at: at(0), user: 'bob' }),
      logRecord('m10-alice', { at: at(10), user: 'alice' }),
      logRecord('m30-bob', { at: at(30), user: 'bob' }),
      logRecord('m10-bob', { at: at(10), user: 'bob' }),
    ]);
    return opened.store;
  }

  it('returns records oldest first, ties in id order', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({}))).toEqual(['m00-bob', 'm10-alice', 'm10-bob', 'm20-alice', 'm30-bob']);
  });

  it('returns records exactly in the record shape, without _id or atMs', async () => {
    const store = await storeWithTimeline();
    const [first] = await store.logs.query({ limit: 1 });
    expect(first).toStrictEqual(logRecord('m00-bob', { at: at(0), user: 'bob' }));
    expect(Object.keys(first ?? {})).toEqual(['id', 'at', 'user', 'session', 'event', 'detail', 'source']);
  });

  it('returns only the records of the given user', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({ user: 'alice' }))).toEqual(['m10-alice', 'm20-alice']);
  });

  it('includes a record exactly at since', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({ since: at(10) }))).toEqual(['m10-alice', 'm10-bob', 'm20-alice', 'm30-bob']);
  });

  it('excludes a record exactly at until', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({ until: at(20) }))).toEqual(['m00-bob', 'm10-alice', 'm10-bob']);
  });

  it('compares since and until as instants, whatever offset they are written in', async () => {
    const store = await storeWithTimeline();
    // 09:10+01:00 is 08:10Z and 09:30+01:00 is 08:30Z.
    const got = await store.logs.query({ since: '2024-03-01T09:10:00+01:00', until: '2024-03-01T09:30:00+01:00' });
    expect(ids(got)).toEqual(['m10-alice', 'm10-bob', 'm20-alice']);
  });

  it('combines the user filter with the time range', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({ user: 'bob', since: at(5), until: at(30) }))).toEqual(['m10-bob']);
  });

  it('returns at most limit records, the oldest ones', async () => {
    const store = await storeWithTimeline();
    expect(ids(await store.logs.query({ limit: 2 }))).toEqual(['m00-bob', 'm10-alice']);
    expect(ids(await store.logs.query({ user: 'bob', limit: 2 }))).toEqual(['m00-bob', 'm10-bob']);
  });

  it('returns nothing for a limit of 0', async () => {
    const store = await storeWithTimeline();
    expect(await store.logs.query({ limit: 0 })).toEqual([]);
  });

  it('refuses a negative or fractional limit with SALA_E_CONFIG_INVALID', async () => {
    const store = await storeWithTimeline();
    await expectSalaError(store.logs.query({ limit: -1 }), 'SALA_E_CONFIG_INVALID');
    await expectSalaError(store.logs.query({ limit: 1.5 }), 'SALA_E_CONFIG_INVALID');
  });

  it('refuses an unparseable since or until with SALA_E_CONFIG_INVALID naming it', async () => {
    const store = await storeWithTimeline();
    const since = await expectSalaError(store.logs.query({ since: 'last week' }), 'SALA_E_CONFIG_INVALID');
    expect(since.message).toContain('"since"');
    const until = await expectSalaError(store.logs.query({ until: '2024-13-01' }), 'SALA_E_CONFIG_INVALID');
    expect(until.message).toContain('"until"');
  });
});
