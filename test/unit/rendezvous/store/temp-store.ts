import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { SalaError, type SalaErrorCode } from '../../../../common/errors.js';
import type { LogFields, Logger } from '../../../../common/log/index.js';
import { openNedbStore } from '../../../../rendezvous/store/nedb-store.js';
import type { LogRecord, SessionRecord, Store, UserRecord } from '../../../../rendezvous/store/store.js';

export interface Warning {
  event: string;
  fields: LogFields;
}

/** A data dir in the OS temp folder, removed when the test finishes (after its stores close). */
export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sala-store-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Opens a real NeDB store in `dataDir`, closed when the test finishes. Warnings are recorded;
 * unless the test says it expects some, any warning fails the test.
 */
export async function openTestStore(
  dataDir: string,
  options: { expectWarnings?: boolean } = {},
): Promise<{ store: Store; warnings: Warning[] }> {
  const warnings: Warning[] = [];
  const record = (event: string, fields: LogFields = {}): void => {
    warnings.push({ event, fields });
  };
  const logger: Logger = { debug: () => undefined, info: () => undefined, warn: record, error: record };
  const store = await openNedbStore(dataDir, { logger });
  onTestFinished(async () => {
    await store.close();
    if (options.expectWarnings !== true && warnings.length > 0) {
      throw new Error(`unexpected store warnings: ${JSON.stringify(warnings)}`);
    }
  });
  return { store, warnings };
}

export async function expectSalaError(promise: Promise<unknown>, code: SalaErrorCode): Promise<SalaError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SalaError);
  expect((err as SalaError).code).toBe(code);
  return err as SalaError;
}

export function userRecord(name: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    name,
    passwordHash: `$argon2id$v=19$m=65536,t=2,p=1$fake-${name}`,
    isDisabled: false,
    createdAt: '2024-03-01T08:00:00.000Z',
    passwordChangedAt: '2024-03-01T08:00:00.000Z',
    ...overrides,
  };
}

export function sessionRecord(sessionId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId,
    user: 'alice',
    dhPk: 'ZGgtcHVibGljLWtleQ==',
    sigPk: 'c2lnLXB1YmxpYy1rZXk=',
    address: '192.168.1.20',
    since: '2024-03-01T08:00:00.000Z',
    lastSeenAt: '2024-03-01T08:05:00.000Z',
    generation: 1,
    ...overrides,
  };
}

export function logRecord(id: string, overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    id,
    at: '2024-03-01T08:00:00.000Z',
    user: 'alice',
    session: 'sess-1',
    event: 'message.sent',
    detail: 'to=bob bytes=12',
    source: 'peer',
    ...overrides,
  };
}
