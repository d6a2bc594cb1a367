import { describe, expect, it } from 'vitest';
import { expectSalaError, openTestStore, tempDataDir, userRecord } from './temp-store.js';

describe('NeDB user store', () => {
  it('returns a created user exactly in the record shape, without NeDB fields', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.users.create(userRecord('alice'));
    const got = await store.users.get('alice');
    expect(got).toStrictEqual(userRecord('alice'));
  });

  it('returns undefined for a user that does not exist', async () => {
    const { store } = await openTestStore(tempDataDir());
    expect(await store.users.get('nobody')).toBeUndefined();
  });

  it('refuses a second account with the same name with SALA_E_USER_EXISTS', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.users.create(userRecord('alice'));
    await expectSalaError(store.users.create(userRecord('alice', { passwordHash: 'other' })), 'SALA_E_USER_EXISTS');
    expect((await store.users.get('alice'))?.passwordHash).toBe(userRecord('alice').passwordHash);
  });

  it('refuses a name that is not in normalised form with SALA_E_INVALID_NAME', async () => {
    const { store } = await openTestStore(tempDataDir());
    await expectSalaError(store.users.create(userRecord('Alice')), 'SALA_E_INVALID_NAME');
    expect(await store.users.list()).toEqual([]);
  });

  it('refuses a record with a malformed timestamp with SALA_E_PROTOCOL_INVALID_FIELD', async () => {
    const { store } = await openTestStore(tempDataDir());
    await expectSalaError(store.users.create(userRecord('alice', { createdAt: 'yesterday' })), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('updates only the fields of the patch and reports true', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.users.create(userRecord('alice'));
    expect(await store.users.update('alice', { isDisabled: true })).toBe(true);
    expect(await store.users.get('alice')).toStrictEqual(userRecord('alice', { isDisabled: true }));
  });

  it('reports false when updating a user that does not exist', async () => {
    const { store } = await openTestStore(tempDataDir());
    expect(await store.users.update('ghost', { isDisabled: true })).toBe(false);
    expect(await store.users.update('ghost', {})).toBe(false);
  });

  it('never renames a user even when a patch smuggles a name in', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.users.create(userRecord('alice'));
    const patch = { isDisabled: true, name: 'mallory' } as unknown as { isDisabled: boolean };
    expect(await store.users.update('alice', patch)).toBe(true);
    expect(await store.users.get('mallory')).toBeUndefined();
    expect((await store.users.get('alice'))?.isDisabled).toBe(true);
  });

  it('treats a non-string name as no user instead of as a query operator', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.users.create(userRecord('alice'));
    const operator = { $ne: '' } as unknown as string;
    expect(await store.users.get(operator)).toBeUndefined();
    expect(await store.users.update(operator, { isDisabled: true })).toBe(false);
  });

  it('lists every user sorted by name', async () => {
    const { store } = await openTestStore(tempDataDir());
    for (const name of ['carol', 'alice', 'bob']) await store.users.create(userRecord(name));
    expect((await store.users.list()).map((u) => u.name)).toEqual(['alice', 'bob', 'carol']);
  });

  it('keeps users and their updates across close and reopen', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.users.create(userRecord('alice'));
    await first.store.users.update('alice', { passwordHash: 'new-hash', passwordChangedAt: '2024-04-01T00:00:00.000Z' });
    await first.store.close();
    const second = await openTestStore(dataDir);
    expect(await second.store.users.list()).toStrictEqual([
      userRecord('alice', { passwordHash: 'new-hash', passwordChangedAt: '2024-04-01T00:00:00.000Z' }),
    ]);
    await expectSalaError(second.store.users.create(userRecord('alice')), 'SALA_E_USER_EXISTS');
  });
});
