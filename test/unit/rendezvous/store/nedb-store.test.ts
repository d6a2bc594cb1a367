import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeLineBreaksInJson } from '../../../../common/store/nedb-collection.js';
import { openNedbStore } from '../../../../rendezvous/store/nedb-store.js';
import {
  expectSalaError,
  logRecord,
  openTestStore,
  sessionRecord,
  tempDataDir,
  userRecord,
} from './temp-store.js';

const isPosix = process.platform !== 'win32';
const modeOf = (path: string): number => statSync(path).mode & 0o777;
const dbFile = (dataDir: string, name: string): string => join(dataDir, 'db', `${name}.db`);

describe('NeDB store: files and lifecycle', () => {
  it('creates one datafile per collection in <dataDir>/db', async () => {
    const dataDir = tempDataDir();
    await openTestStore(dataDir);
    expect(readdirSync(join(dataDir, 'db')).sort()).toEqual(['logs.db', 'sessions.db', 'users.db']);
  });

  it.skipIf(!isPosix)('makes the db folder 0700 and every datafile 0600, also after compaction', async () => {
    const dataDir = tempDataDir();
    const { store } = await openTestStore(dataDir);
    await store.users.create(userRecord('alice'));
    await store.close(); // compaction rewrites each file through a temp file
    expect(modeOf(join(dataDir, 'db'))).toBe(0o700);
    for (const name of ['users', 'sessions', 'logs']) expect(modeOf(dbFile(dataDir, name))).toBe(0o600);
  });

  it.skipIf(!isPosix)('tightens a db folder and datafile left world-readable', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.close();
    const { chmodSync } = await import('node:fs');
    chmodSync(join(dataDir, 'db'), 0o755);
    chmodSync(dbFile(dataDir, 'logs'), 0o644);
    await openTestStore(dataDir);
    expect(modeOf(join(dataDir, 'db'))).toBe(0o700);
    expect(modeOf(dbFile(dataDir, 'logs'))).toBe(0o600);
  });

  it('keeps users, sessions and logs across close and reopen', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.users.create(userRecord('alice'));
    await first.store.sessions.put(sessionRecord('s1'));
    await first.store.logs.append([logRecord('a'), logRecord('b')]);
    await first.store.close();

    const second = await openTestStore(dataDir);
    expect(await second.store.users.list()).toStrictEqual([userRecord('alice')]);
    expect(await second.store.sessions.list()).toStrictEqual([sessionRecord('s1')]);
    expect(await second.store.logs.query({})).toStrictEqual([logRecord('a'), logRecord('b')]);
    expect(await second.store.logs.append([logRecord('a'), logRecord('c')])).toEqual({ stored: 1 });
  });

  it('keeps a record whose text holds U+2028, U+2029 or U+0085 intact across reopen', async () => {
    const dataDir = tempDataDir();
    const detail = 'a\u2028b\u2029c\u0085d\ne';
    const first = await openTestStore(dataDir);
    await first.store.logs.append([logRecord('seps', { detail })]);
    await first.store.close();
    const second = await openTestStore(dataDir);
    expect((await second.store.logs.query({}))[0]?.detail).toBe(detail);
  });

  it('escapes only the line separators JSON.stringify leaves raw', () => {
    const line = JSON.stringify({ s: 'x\u2028y\u2029z\u0085' });
    const escaped = escapeLineBreaksInJson(line);
    expect(escaped).toBe('{"s":"x\\u2028y\\u2029z\\u0085"}');
    expect(JSON.parse(escaped)).toEqual(JSON.parse(line));
  });

  it('skips a torn line in logs.db with a warning, keeps a copy, and still opens', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.logs.append([logRecord('a'), logRecord('b'), logRecord('c')]);
    await first.store.close();
    appendFileSync(dbFile(dataDir, 'logs'), '{"id":"torn","at":"2024-03-01T08:\n');

    const second = await openTestStore(dataDir, { expectWarnings: true });
    expect((await second.store.logs.query({})).map((r) => r.id)).toEqual(['a', 'b', 'c']);
    expect(second.warnings).toEqual([
      { event: 'store.file.corrupt', fields: expect.objectContaining({ collection: 'logs', lines: 1 }) },
    ]);
    const backups = readdirSync(join(dataDir, 'db')).filter((f) => f.startsWith('logs.db.corrupt-'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(dataDir, 'db', backups[0] ?? ''), 'utf8')).toContain('"torn"');
    if (isPosix) expect(modeOf(join(dataDir, 'db', backups[0] ?? ''))).toBe(0o600);
  });

  it('skips a well-formed line whose record is damaged, warning once without its content', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.logs.append([logRecord('a'), logRecord('b')]);
    await first.store.close();
    const damaged = { _id: 'damaged0000001', id: 'x', at: 42, atMs: 0, user: 'secret-user', session: '', event: 'login', detail: '', source: 'server' };
    const lyingTime = { ...logRecord('liar'), _id: 'damaged0000002', atMs: 0 }; // atMs disagrees with at
    appendFileSync(dbFile(dataDir, 'logs'), `${JSON.stringify(damaged)}\n${JSON.stringify(lyingTime)}\n`);

    const second = await openTestStore(dataDir, { expectWarnings: true });
    expect((await second.store.logs.query({})).map((r) => r.id)).toEqual(['a', 'b']);
    expect((await second.store.logs.query({ limit: 2 })).map((r) => r.id)).toEqual(['a', 'b']);
    await second.store.logs.query({});
    const invalid = second.warnings.filter((w) => w.event === 'store.record.invalid');
    // Three queries, one warning per damaged document.
    expect(invalid.map((w) => w.fields['docId']).sort()).toEqual(['damaged0000001', 'damaged0000002']);
    expect(JSON.stringify(second.warnings)).not.toContain('secret-user');
  });

  it('fills a limited query past damaged records so it still returns limit records', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.logs.append([logRecord('b', { at: '2024-03-01T08:01:00.000Z' }), logRecord('c', { at: '2024-03-01T08:02:00.000Z' })]);
    await first.store.close();
    const damaged = { ...logRecord('a'), _id: 'damaged0000003', atMs: Date.parse('2024-03-01T08:00:00.000Z'), source: 'nobody' };
    appendFileSync(dbFile(dataDir, 'logs'), `${JSON.stringify(damaged)}\n`);

    const second = await openTestStore(dataDir, { expectWarnings: true });
    expect((await second.store.logs.query({ limit: 2 })).map((r) => r.id)).toEqual(['b', 'c']);
    expect(second.warnings.map((w) => w.event)).toEqual(['store.record.invalid']);
  });

  it('skips a damaged user record instead of failing the listing', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.users.create(userRecord('alice'));
    await first.store.close();
    appendFileSync(dbFile(dataDir, 'users'), `${JSON.stringify({ _id: 'damaged0000004', name: 'bob', isDisabled: 'no' })}\n`);

    const second = await openTestStore(dataDir, { expectWarnings: true });
    expect((await second.store.users.list()).map((u) => u.name)).toEqual(['alice']);
    expect(await second.store.users.get('bob')).toBeUndefined();
    expect(second.warnings.map((w) => w.event)).toEqual(['store.record.invalid']);
  });

  it('opens a logs.db that is entirely garbage, with a warning', async () => {
    const dataDir = tempDataDir();
    const first = await openTestStore(dataDir);
    await first.store.close();
    writeFileSync(dbFile(dataDir, 'logs'), 'not json\n\u0000\u0001\n{"half":\n');
    const second = await openTestStore(dataDir, { expectWarnings: true });
    expect(await second.store.logs.query({})).toEqual([]);
    expect(second.warnings[0]?.fields['lines']).toBe(3);
  });

  it('refuses operations after close with SALA_E_DATA_DIR', async () => {
    const { store } = await openTestStore(tempDataDir());
    await store.close();
    await expectSalaError(store.logs.append([logRecord('a')]), 'SALA_E_DATA_DIR');
    await expectSalaError(store.users.get('alice'), 'SALA_E_DATA_DIR');
  });

  it('lets close be called twice and finishes the appends already running', async () => {
    const dataDir = tempDataDir();
    const { store } = await openTestStore(dataDir);
    const appending = store.logs.append(Array.from({ length: 50 }, (_, i) => logRecord(`r${i}`)));
    await Promise.all([store.close(), store.close()]);
    expect(await appending).toEqual({ stored: 50 });
    const reopened = await openTestStore(dataDir);
    expect(await reopened.store.logs.query({})).toHaveLength(50);
  });

  it('writes a compacted datafile on close: one line per record', async () => {
    const dataDir = tempDataDir();
    const { store } = await openTestStore(dataDir);
    await store.sessions.put(sessionRecord('s1'));
    for (let generation = 2; generation <= 5; generation += 1) await store.sessions.put(sessionRecord('s1', { generation }));
    await store.close();
    const lines = readFileSync(dbFile(dataDir, 'sessions'), 'utf8').split('\n').filter((l) => l !== '');
    const documents = lines.filter((l) => !l.includes('$$indexCreated'));
    expect(documents).toHaveLength(1);
    expect(documents[0]).toContain('"generation":5');
  });

  it('refuses a compaction interval below one second with SALA_E_CONFIG_INVALID', async () => {
    const dataDir = tempDataDir();
    await expectSalaError(openNedbStore(dataDir, { compactionIntervalMs: 10 }), 'SALA_E_CONFIG_INVALID');
    expect(existsSync(join(dataDir, 'db'))).toBe(false);
  });
});
