/**
 * The HTTPS admin API over real TLS on 127.0.0.1:0 with a real temporary data dir. The backend is
 * the in-memory fake of helpers.ts (see there why).
 */
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import { startAdminApi } from '../../../../rendezvous/admin/admin-api.js';
import { ADMIN_PORT_FILE, MAX_ADMIN_BODY_BYTES } from '../../../../rendezvous/admin/admin-protocol.js';
import {
  call,
  errorOf,
  fakeBackend,
  recordingLogger,
  sampleLog,
  sampleSession,
  startTestApi,
  tempDataDir,
  type RunningApi,
} from './helpers.js';

const UNAUTHORIZED = '{"error":{"code":"SALA_E_ADMIN_REFUSED","message":"Unauthorized"}}';

/**
 * Writes `head` (and optional body bytes) over raw TLS and returns everything the server sends
 * until it closes the connection. Used where an HTTP client would insist on sending a whole body.
 */
async function rawExchange(running: RunningApi, head: string, body?: Buffer): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: running.api.port, ca: running.certPem });
  onTestFinished(() => {
    socket.destroy();
  });
  await once(socket, 'secureConnect', { signal: AbortSignal.timeout(5_000) });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined); // a reset after the answer is fine: the answer is what we check
  socket.write(head);
  if (body !== undefined) socket.write(body);
  await once(socket, 'close', { signal: AbortSignal.timeout(5_000) });
  return Buffer.concat(chunks).toString('latin1');
}

function requestHead(running: RunningApi, lines: readonly string[]): string {
  return [
    'POST /api/users HTTP/1.1',
    `Host: 127.0.0.1:${running.api.port}`,
    `Authorization: Bearer ${running.token}`,
    'Content-Type: application/json',
    ...lines,
    '',
    '',
  ].join('\r\n');
}

describe('admin API: who may call it', () => {
  it('refuses a request whose Host is another name (DNS rebinding) with 421', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/users', headers: { host: `evil.example:${running.api.port}` } });
    expect(result.status).toBe(421);
    expect(errorOf(result).code).toBe('SALA_E_ADMIN_REFUSED');
  });

  it('refuses a request whose Host names another port', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/users', headers: { host: `127.0.0.1:${running.api.port + 1}` } });
    expect(result.status).toBe(421);
  });

  it('accepts the Host names localhost:PORT and [::1]:PORT', async () => {
    const running = await startTestApi();
    expect((await call(running, { path: '/api/users', headers: { host: `localhost:${running.api.port}` } })).status).toBe(200);
    expect((await call(running, { path: '/api/users', headers: { host: `[::1]:${running.api.port}` } })).status).toBe(200);
  });

  it('answers 401 with a fixed body when the token is missing', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/users', token: null });
    expect(result.status).toBe(401);
    expect(result.text).toBe(UNAUTHORIZED);
  });

  it('answers a wrong token exactly as a missing one', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/users', token: `${running.token.slice(0, -1)}A` });
    expect(result.status).toBe(401);
    expect(result.text).toBe(UNAUTHORIZED);
  });

  it('refuses a token sent with another scheme', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/users', token: null, headers: { authorization: `Basic ${running.token}` } });
    expect(result.status).toBe(401);
    expect(result.text).toBe(UNAUTHORIZED);
  });

  it('does not reach the backend without the token', async () => {
    const running = await startTestApi();
    await call(running, { method: 'POST', path: '/api/users', token: 'nope', body: { name: 'mallory', password: 'password1' } });
    expect(running.backend.users.size).toBe(0);
  });
});

describe('admin API: request bodies', () => {
  it('answers 413 to a declared 17 KiB body before a byte of it is sent', async () => {
    const running = await startTestApi();
    const response = await rawExchange(running, requestHead(running, [`Content-Length: ${17 * 1024}`]));
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(response).toContain('SALA_E_ADMIN_REFUSED');
    expect(running.backend.users.size).toBe(0);
  });

  it('stops reading a chunked body at the first byte past 16 KiB, without waiting for its end', async () => {
    const running = await startTestApi();
    const chunk = Buffer.alloc(17 * 1024, 0x20);
    // One 17 KiB chunk and no terminating 0-chunk: only a server that stops reading can answer.
    const body = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const response = await rawExchange(running, requestHead(running, ['Transfer-Encoding: chunked']), body);
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('accepts a body of exactly 16 KiB', async () => {
    const running = await startTestApi();
    const name = 'bob';
    const filler = 'x'.repeat(MAX_ADMIN_BODY_BYTES - JSON.stringify({ name, password: '' }).length);
    const result = await call(running, { method: 'POST', path: '/api/users', body: JSON.stringify({ name, password: filler }) });
    expect(result.status).toBe(201);
  });

  it('answers 415 to a body that is not application/json', async () => {
    const running = await startTestApi();
    const result = await call(running, {
      method: 'POST',
      path: '/api/users',
      body: '{"name":"bob","password":"password1"}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(result.status).toBe(415);
    expect(errorOf(result).code).toBe('SALA_E_ADMIN_REFUSED');
  });

  it('answers 400 to a body that is not JSON', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users', body: '{"name":' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_ADMIN_REFUSED');
  });

  it('answers 400 to a body with an unknown or wrongly typed field', async () => {
    const running = await startTestApi();
    const extra = await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'password1', isAdmin: true } });
    const typed = await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 12345678 } });
    expect([extra.status, typed.status]).toEqual([400, 400]);
    expect(running.backend.users.size).toBe(0);
  });
});

describe('admin API: users', () => {
  it('lists the accounts', async () => {
    const running = await startTestApi();
    await running.backend.addUser('alice', 'password1');
    const result = await call(running, { path: '/api/users' });
    expect(result.status).toBe(200);
    expect(result.json()).toEqual([
      { name: 'alice', isDisabled: false, createdAt: '2025-01-02T03:04:05.000Z', passwordChangedAt: '2025-01-02T03:04:05.000Z' },
    ]);
  });

  it('creates an account with 201 and never echoes the password', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'correct horse' } });
    expect(result.status).toBe(201);
    expect(result.json()).toMatchObject({ name: 'bob', isDisabled: false });
    expect(result.text).not.toContain('correct horse');
    expect(running.backend.users.get('bob')?.password).toBe('correct horse');
  });

  it('answers 409 SALA_E_USER_EXISTS for a taken name', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const result = await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'password2' } });
    expect(result.status).toBe(409);
    expect(errorOf(result).code).toBe('SALA_E_USER_EXISTS');
  });

  it('answers 400 SALA_E_INVALID_NAME for a bad name', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users', body: { name: '../x', password: 'password1' } });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_INVALID_NAME');
  });

  it('answers 400 SALA_E_PASSWORD_REJECTED for a short password', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'short' } });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('disables an account', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const result = await call(running, { method: 'POST', path: '/api/users/bob/disable' });
    expect(result.status).toBe(200);
    expect(result.json()).toMatchObject({ name: 'bob', isDisabled: true });
  });

  it('enables an account', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    await running.backend.setUserDisabled('bob', true);
    const result = await call(running, { method: 'POST', path: '/api/users/bob/enable' });
    expect(result.status).toBe(200);
    expect(result.json()).toMatchObject({ name: 'bob', isDisabled: false });
  });

  it('answers 404 when disabling an account that does not exist', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users/ghost/disable' });
    expect(result.status).toBe(404);
    expect(errorOf(result).code).toBe('SALA_E_USER_UNKNOWN');
  });

  it('passes a percent-encoded name to the backend decoded', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users/%2E%2E%2Fx/enable' });
    expect(result.status).toBe(404);
    expect(errorOf(result).message).toContain('"../x"');
  });

  it("changes an account's password", async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const result = await call(running, { method: 'POST', path: '/api/users/bob/password', body: { password: 'password2' } });
    expect(result.status).toBe(200);
    expect(running.backend.users.get('bob')?.password).toBe('password2');
  });

  it('answers 404 when changing the password of an account that does not exist', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/users/ghost/password', body: { password: 'password2' } });
    expect(result.status).toBe(404);
  });

  it('answers 400 to a password change without a body', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const result = await call(running, { method: 'POST', path: '/api/users/bob/password' });
    expect(result.status).toBe(400);
    expect(running.backend.users.get('bob')?.password).toBe('password1');
  });
});

describe('admin API: sessions', () => {
  it('lists the live sessions', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession()];
    const result = await call(running, { path: '/api/sessions' });
    expect(result.status).toBe(200);
    expect(result.json()).toEqual([sampleSession()]);
  });

  it('kicks a session and returns the ended ones', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession(), sampleSession({ sessionId: 's-2', user: 'bob' })];
    const result = await call(running, { method: 'POST', path: '/api/kick', body: { target: 's-1' } });
    expect(result.status).toBe(200);
    expect(result.json()).toEqual({ kicked: [sampleSession()] });
    expect(running.backend.sessions.map((s) => s.sessionId)).toEqual(['s-2']);
  });

  it('answers 404 SALA_E_SESSION_UNKNOWN for a kick that matches nothing', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'POST', path: '/api/kick', body: { target: 'nobody' } });
    expect(result.status).toBe(404);
    expect(errorOf(result).code).toBe('SALA_E_SESSION_UNKNOWN');
  });
});

describe('admin API: logs', () => {
  it('exports JSON by default', async () => {
    const running = await startTestApi();
    running.backend.logs = [sampleLog()];
    const result = await call(running, { path: '/api/logs' });
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toMatch(/^application\/json; charset=utf-8/);
    expect(result.json()).toEqual([{ id: 'e-1', at: '2025-01-02T03:04:05.000Z', user: 'alice', session: 's-1', event: 'login', detail: '' }]);
  });

  it('exports CSV as text/csv with formula cells neutralised', async () => {
    const running = await startTestApi();
    running.backend.logs = [sampleLog({ detail: '=HYPERLINK("http://x")' })];
    const result = await call(running, { path: '/api/logs?format=csv' });
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(result.text.split('\r\n')[0]).toBe('id,at,user,session,event,detail');
    expect(result.text).toContain(`"'=HYPERLINK(""http://x"")"`);
  });

  it('passes user, since and until to the backend', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/logs?user=Alice&since=2025-01-01T00:00:00Z&until=2025-01-02T00:00:00Z' });
    expect(result.status).toBe(200);
    expect(running.backend.logQueries).toEqual([{ user: 'alice', since: '2025-01-01T00:00:00.000Z', until: '2025-01-02T00:00:00.000Z' }]);
  });

  it('treats empty parameters as not given', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/logs?format=json&user=&since=&until=' });
    expect(result.status).toBe(200);
    expect(running.backend.logQueries).toEqual([{}]);
  });

  it('answers 400 SALA_E_CONFIG_INVALID for a date that is not ISO 8601', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/logs?since=yesterday' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_CONFIG_INVALID');
  });

  it('answers 400 SALA_E_CONFIG_INVALID for an unknown format', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/logs?format=xml' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_CONFIG_INVALID');
  });

  it('answers 400 for an unknown query parameter', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/logs?limit=5' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_CONFIG_INVALID');
  });
});

describe('admin API: routing and faults', () => {
  it('answers 404 to an unknown route', async () => {
    const running = await startTestApi();
    const result = await call(running, { path: '/api/nothing' });
    expect(result.status).toBe(404);
    expect(errorOf(result).code).toBe('SALA_E_ADMIN_REFUSED');
  });

  it('answers 405 with Allow to a known route with the wrong method', async () => {
    const running = await startTestApi();
    const result = await call(running, { method: 'DELETE', path: '/api/users' });
    expect(result.status).toBe(405);
    expect(result.headers['allow']).toBe('GET, POST');
  });

  it('answers 500 with a generic message when the backend fails unexpectedly', async () => {
    const running = await startTestApi();
    running.backend.failWith = new Error('disk on fire at /secret/path');
    const result = await call(running, { path: '/api/users' });
    expect(result.status).toBe(500);
    expect(errorOf(result)).toEqual({ code: 'SALA_E_ADMIN_REFUSED', message: 'The server failed to handle the admin request; see its log.' });
  });

  it('logs an unexpected failure with its route but without the request body', async () => {
    const logger = recordingLogger();
    const running = await startTestApi({ logger });
    running.backend.failWith = new Error('store closed');
    await call(running, { method: 'POST', path: '/api/users/bob/password', body: { password: 'hunter2-secret' } });
    const failure = logger.lines.find((line) => line.includes('admin.request.failed'));
    expect(failure).toContain('/api/users/:name/password');
    expect(logger.lines.join('\n')).not.toContain('hunter2-secret');
  });

  it('blanks the request body out of a logged failure message that quotes it', async () => {
    const logger = recordingLogger();
    const running = await startTestApi({ logger });
    running.backend.failWith = new Error('cannot hash "hunter2-secret"');
    await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'hunter2-secret' } });
    const all = logger.lines.join('\n');
    expect(all).toContain('[redacted]');
    expect(all).not.toContain('hunter2-secret');
  });

  it('never logs a password or the token, even at debug level', async () => {
    const logger = recordingLogger();
    const running = await startTestApi({ logger });
    await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'hunter2-secret' } });
    await call(running, { method: 'POST', path: '/api/users', body: { name: 'bob', password: 'hunter3-secret' } });
    const all = logger.lines.join('\n');
    expect(all).not.toContain('hunter2-secret');
    expect(all).not.toContain('hunter3-secret');
    expect(all).not.toContain(running.token);
  });

  it('maps a SalaError code it has no status for to 400 with the code', async () => {
    const running = await startTestApi();
    running.backend.failWith = new SalaError('SALA_E_DATA_DIR', 'The store cannot be written.');
    const result = await call(running, { path: '/api/sessions' });
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('SALA_E_DATA_DIR');
  });
});

describe('admin API: lifecycle', () => {
  it('writes its port to admin.port after listening', async () => {
    const running = await startTestApi();
    expect(readFileSync(join(running.dataDir, ADMIN_PORT_FILE), 'utf8')).toBe(`${running.api.port}\n`);
  });

  it('removes admin.port on close, and close can be called twice', async () => {
    const running = await startTestApi();
    await running.api.close();
    await running.api.close();
    expect(existsSync(join(running.dataDir, ADMIN_PORT_FILE))).toBe(false);
  });

  it('refuses to listen on an address that is not loopback', async () => {
    const dataDir = tempDataDir();
    await expect(startAdminApi({ backend: fakeBackend(), dataDir, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({
      code: 'SALA_E_CONFIG_INVALID',
    });
  });

  it('fails with SALA_E_CONFIG_INVALID when the port is taken', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const { port } = blocker.address() as AddressInfo;
    const error = await startAdminApi({ backend: fakeBackend(), dataDir: tempDataDir(), port }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SalaError);
    expect((error as SalaError).code).toBe('SALA_E_CONFIG_INVALID');
    expect((error as SalaError).message).toContain('--admin-port');
  });
});
