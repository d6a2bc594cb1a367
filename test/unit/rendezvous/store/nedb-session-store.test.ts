import { describe, expect, it } from 'vitest';
import { expectSalaError, openTestStore, sessionRecord, tempDataDir } from './temp-store.js';

describe('NeDB session store', () => {
  it('lists a stored session exactly in the record shape', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.sessions.put(sessionRecord('s1'));
    expect(await store.sessions.list()).toStrictEqual([sessionRecord('s1')]);
  });

  it('replaces a session put again under the same id', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.sessions.put(sessionRecord('s1'));
    await store.sessions.put(sessionRecord('s1', { lastSeenAt: '2024-03-01T09:00:00.000Z', generation: 2 }));
    expect(await store.sessions.list()).toStrictEqual([
      sessionRecord('s1', { lastSeenAt: '2024-03-01T09:00:00.000Z', generation: 2 }),
    ]);
  });

  it('removes a session by id and ignores an unknown id', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.sessions.put(sessionRecord('s1'));
    await store.sessions.put(sessionRecord('s2'));
    await store.sessions.remove('s1');
    await store.sessions.remove('does-not-exist');
    expect((await store.sessions.list()).map((s) => s.sessionId)).toEqual(['s2']);
  });

  it('lists sessions oldest login first', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.sessions.put(sessionRecord('late', { since: '2024-03-01T10:00:00.000Z' }));
    await store.sessions.put(sessionRecord('early', { since: '2024-03-01T07:00:00.000Z' }));
    expect((await store.sessions.list()).map((s) => s.sessionId)).toEqual(['early', 'late']);
  });

  it('stores timestamps in canonical UTC form', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.sessions.put(sessionRecord('s1', { since: '2024-03-01T09:00:00+01:00' }));
    expect((await store.sessions.list())[0]?.since).toBe('2024-03-01T08:00:00.000Z');
  });

  it('refuses a session with a negative generation with SALA_E_PROTOCOL_INVALID_FIELD', async () => {
    const { store } = await openTestStore(tempDataDir());
    await expectSalaError(store.sessions.put(sessionRecord('s1', { generation: -1 })), 'SALA_E_PROTOCOL_INVALID_FIELD');
    expect(await store.sessions.list()).toEqual([]);
  });

  it('keeps sessions, replacements and removals across close and reopen', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.sessions.put(sessionRecord('s1'));
    await first.store.sessions.put(sessionRecord('s2'));
    await first.store.sessions.put(sessionRecord('s2', { generation: 5 }));
    await first.store.sessions.remove('s1');
    await first.store.close();
    const second = await openTestStore(dataDir);
    expect(await second.store.sessions.list()).toStrictEqual([sessionRecord('s2', { generation: 5 })]);
  });
});
