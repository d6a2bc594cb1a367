import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import {
  connectSecure,
  generateIdentity,
  SalaError,
  verifyRevocation,
  verifyTicket,
  type SignedRevocation,
  type SignedTicket,
  type WireMessage,
} from '../../../common/index.js';
import { openSession } from '../../../peer/rendezvous/rendezvous-client.js';
import { packMessage } from '../../../common/wire/msgpack.js';
import { ServerClock } from '../../../peer/rendezvous/server-clock.js';
import { AdminClient } from '../../../rendezvous/admin/admin-client.js';
import type { DirectoryChange } from '../../../peer/rendezvous/rendezvous-client.js';
import { rejectsWithSalaError } from '../../helpers/errors.js';
import { login, newClient, register, startServer, tempDir, TEST_PASSWORD, trustOf } from '../../helpers/rendezvous.js';
import { DataDirLock } from '../../../common/index.js';
import { SERVER_LOCK } from '../../../rendezvous/server.js';
import { usableEndpoints } from '../../../rendezvous/peer-connection.js';
import type { LogRecord } from '../../../rendezvous/store/store.js';

/** A record as `logs export --format json` prints it: the stored record without its source. */
type ExportedEvent = Omit<LogRecord, 'source'>;

async function storedEvents(admin: AdminClient, user: string): Promise<ExportedEvent[]> {
  return JSON.parse(await admin.exportLogs({ format: 'json', user })) as ExportedEvent[];
}

function nextDirectory(client: ReturnType<typeof newClient>, predicate: (c: DirectoryChange) => boolean): Promise<DirectoryChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching directory update')), 5_000);
    const onChange = (change: DirectoryChange): void => {
      if (!predicate(change)) return;
      clearTimeout(timer);
      client.off('directory', onChange);
      resolve(change);
    };
    client.on('directory', onChange);
  });
}

describe('accounts and login', () => {
  it('registers a user and logs in with a welcome whose ticket the server key verifies', async () => {
    const server = await startServer();
    await register(server, 'Alice');
    const identity = generateIdentity();
    const client = await login(server, 'alice', { identity });
    expect(client.user).toBe('alice');
    const ticket = client.ticket;
    expect(ticket).toBeDefined();
    const claims = verifyTicket(ticket!, {
      serverSigningKey: client.serverSigningKey!,
      nowMs: client.clock.now(),
      expectedDhPk: identity.dh.publicKey,
      expectedUser: 'alice',
    });
    expect(claims.sid).toBe(client.sessionId);
    expect(claims.notAfterMs - claims.notBeforeMs).toBe(60 * 60_000);
  });

  it('answers an unknown user and a wrong password with the same SALA_E_AUTH_FAILED', async () => {
    const server = await startServer();
    await register(server, 'bob');
    const wrong = await rejectsWithSalaError(login(server, 'bob', { password: 'not the password' }));
    const unknown = await rejectsWithSalaError(login(server, 'nobody', { password: TEST_PASSWORD }));
    expect(wrong.code).toBe('SALA_E_AUTH_FAILED');
    expect(unknown.code).toBe('SALA_E_AUTH_FAILED');
    expect(unknown.message).toBe(wrong.message);
  });

  it('tells a disabled user so only after a correct password', async () => {
    const server = await startServer();
    await register(server, 'carol');
    await server.accounts.setDisabled('carol', true);
    expect((await rejectsWithSalaError(login(server, 'carol', { password: 'wrong password' }))).code).toBe('SALA_E_AUTH_FAILED');
    expect((await rejectsWithSalaError(login(server, 'carol'))).code).toBe('SALA_E_ACCOUNT_DISABLED');
  });

  it('refuses a duplicate registration, even in another case or width, with SALA_E_USER_EXISTS', async () => {
    const server = await startServer();
    await register(server, 'dave');
    expect((await rejectsWithSalaError(register(server, 'DAVE'))).code).toBe('SALA_E_USER_EXISTS');
    expect((await rejectsWithSalaError(register(server, 'ｄａｖｅ'))).code).toBe('SALA_E_USER_EXISTS');
  });

  it('refuses an invalid name with SALA_E_INVALID_NAME and a short password with SALA_E_PASSWORD_REJECTED', async () => {
    const server = await startServer();
    expect((await rejectsWithSalaError(register(server, 'a b'))).code).toBe('SALA_E_INVALID_NAME');
    expect((await rejectsWithSalaError(register(server, 'x'))).code).toBe('SALA_E_INVALID_NAME');
    expect((await rejectsWithSalaError(register(server, 'eve', 'short'))).code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('refuses self-registration with SALA_E_REGISTRATION_CLOSED when it is switched off', async () => {
    const server = await startServer({ isSelfRegistrationOpen: false });
    expect((await rejectsWithSalaError(register(server, 'frank'))).code).toBe('SALA_E_REGISTRATION_CLOSED');
  });
});

describe('sessions', () => {
  it('refuses a 4th session with SALA_E_SESSION_LIMIT listing the three live ones', async () => {
    const server = await startServer();
    await register(server, 'gina');
    const live = [await login(server, 'gina'), await login(server, 'gina'), await login(server, 'gina')];
    const err = await rejectsWithSalaError(login(server, 'gina'));
    expect(err.code).toBe('SALA_E_SESSION_LIMIT');
    const sessions = err.details.sessions ?? [];
    expect(sessions.map((s) => s.sessionId).sort()).toEqual(live.map((c) => c.sessionId).sort());
    for (const s of sessions) {
      expect(s.address).toBe('127.0.0.1');
      expect(new Date(s.since).toISOString()).toBe(s.since);
      expect(err.message).toContain(s.sessionId);
    }
  });

  it('frees the slot at once on logout', async () => {
    const server = await startServer();
    await register(server, 'hank');
    const first = await login(server, 'hank');
    await login(server, 'hank');
    await login(server, 'hank');
    await first.logout();
    const fourth = await login(server, 'hank');
    expect(fourth.sessionId).toBeDefined();
    expect(server.sessions.forUser('hank')).toHaveLength(3);
  });

  it('keeps a dropped session for the grace period, then frees it', async () => {
    const server = await startServer({ limits: { graceMs: 300 } });
    await register(server, 'ivy');
    const client = await login(server, 'ivy');
    const sessionId = client.sessionId!;
    const ended = once(server.sessions, 'offline');
    client.close();
    await new Promise((r) => setImmediate(r));
    expect(server.sessions.get(sessionId)).toBeDefined();
    const [session, reason] = (await ended) as [{ sessionId: string }, string];
    expect(session.sessionId).toBe(sessionId);
    expect(reason).toBe('expired');
  });

  it('resumes the session after the connection drops, without the password', async () => {
    const server = await startServer();
    await register(server, 'jack');
    const client = await login(server, 'jack');
    const sessionId = client.sessionId;
    const reconnected = once(client, 'server.reconnected', { signal: AbortSignal.timeout(5_000) });
    // Cut the connection under the client: the server sees a drop, the client resumes.
    server.sessions.get(sessionId!)?.link?.close();
    await reconnected;
    expect(client.sessionId).toBe(sessionId);
    expect(server.sessions.forUser('jack')).toHaveLength(1);
  });

  it('refuses to resume a session from another device key, or an unknown session, with SALA_E_SESSION_UNKNOWN', async () => {
    const server = await startServer();
    await register(server, 'kate');
    const owner = await login(server, 'kate');
    const request = { op: 'resume' as const, sessionId: owner.sessionId! };
    const otherDevice = { ...trustOf(server), user: 'kate', identity: generateIdentity() };
    expect((await rejectsWithSalaError(openSession(otherDevice, request, undefined, new ServerClock()))).code).toBe('SALA_E_SESSION_UNKNOWN');
    const unknown = { op: 'resume' as const, sessionId: 'no-such-session' };
    expect((await rejectsWithSalaError(openSession(otherDevice, unknown, undefined, new ServerClock()))).code).toBe('SALA_E_SESSION_UNKNOWN');
    // The real owner's session is untouched.
    expect(server.sessions.get(owner.sessionId!)?.link).toBeDefined();
  });

  it('ends a kicked session with SALA_E_KICKED and pushes a signed revocation to the others', async () => {
    const server = await startServer();
    await register(server, 'liam');
    await register(server, 'mia');
    const victim = await login(server, 'liam');
    const witness = await login(server, 'mia');
    const kicked = once(victim, 'error', { signal: AbortSignal.timeout(5_000) }) as Promise<[SalaError]>;
    const revoked = once(witness, 'revoked', { signal: AbortSignal.timeout(5_000) }) as Promise<[SignedRevocation]>;
    const admin = await AdminClient.fromDataDir(server.dataDir);
    const ended = await admin.kick('liam');
    expect(ended.map((s) => s.sessionId)).toEqual([victim.sessionId]);
    expect((await kicked)[0].code).toBe('SALA_E_KICKED');
    const [revocation] = await revoked;
    const claims = verifyRevocation(revocation, witness.serverSigningKey!);
    expect(claims).toMatchObject({ user: 'liam', sessionId: victim.sessionId, reason: 'kick' });
    expect(server.sessions.forUser('liam')).toHaveLength(0);
  });
});

describe('tickets and session traffic', () => {
  it('renews the ticket at the interval the server sets, with a higher generation', async () => {
    const server = await startServer({ limits: { renewAfterMs: 100 } });
    await register(server, 'ben');
    const client = await login(server, 'ben');
    const first = verifyTicket(client.ticket!, { serverSigningKey: client.serverSigningKey!, nowMs: client.clock.now() });
    const [renewed] = (await once(client, 'ticket', { signal: AbortSignal.timeout(5_000) })) as [SignedTicket];
    const second = verifyTicket(renewed, { serverSigningKey: client.serverSigningKey!, nowMs: client.clock.now() });
    expect(second.sid).toBe(first.sid);
    expect(second.generation).toBeGreaterThan(first.generation);
  });

  it('refuses to resume a session whose grace period has run out with SALA_E_SESSION_UNKNOWN', async () => {
    const server = await startServer({ limits: { graceMs: 100 } });
    await register(server, 'cleo');
    const identity = generateIdentity();
    const client = await login(server, 'cleo', { identity });
    const sessionId = client.sessionId!;
    const expired = once(server.sessions, 'offline');
    client.close();
    await expired;
    const resume = openSession({ ...trustOf(server), user: 'cleo', identity }, { op: 'resume', sessionId }, undefined, new ServerClock());
    await rejectsWithSalaError(resume, 'SALA_E_SESSION_UNKNOWN');
  });

  it('closes a logged-in connection that sends an invalid message, keeping its session for a resume', async () => {
    const server = await startServer();
    await register(server, 'dora');
    const { messages, first } = await openSession(
      { ...trustOf(server), user: 'dora', identity: generateIdentity() },
      { op: 'login', password: TEST_PASSWORD },
      undefined,
      new ServerClock(),
    );
    expect(first.message.type).toBe('welcome');
    const told = new Promise<unknown>((resolve) => messages.on('message', (m) => m.type === 'error' && resolve(m)));
    messages.channel.resume();
    messages.channel.write(packMessage({ type: 'welcome', forged: true }));
    expect(await told).toMatchObject({ code: 'SALA_E_PROTOCOL_INVALID_FIELD' });
    await once(messages, 'close');
    expect(server.sessions.forUser('dora')).toHaveLength(1);
    // The server notices its side of the close a moment later.
    await vi.waitFor(() => expect(server.sessions.forUser('dora')[0]?.link).toBeUndefined(), { timeout: 2_000 });
  });

  it('disconnects a session that floods the server with SALA_E_RATE_LIMIT, and serves others', async () => {
    const server = await startServer({ limits: { messagesPerSecond: 10, messageBurst: 20 } });
    await register(server, 'eddy');
    await register(server, 'faye');
    const { messages } = await openSession(
      { ...trustOf(server), user: 'eddy', identity: generateIdentity() },
      { op: 'login', password: TEST_PASSWORD },
      undefined,
      new ServerClock(),
    );
    const told = new Promise<unknown>((resolve) => messages.on('message', (m) => m.type === 'error' && resolve(m)));
    messages.channel.resume();
    for (let i = 0; i < 100; i++) messages.send({ type: 'announce', addresses: [{ host: '127.0.0.1', port: 1000 + i }] });
    expect(await told).toMatchObject({ code: 'SALA_E_RATE_LIMIT' });
    expect((await login(server, 'faye')).sessionId).toBeDefined();
  });
});

describe('abuse by a logged-in peer', () => {
  it('counts pings against the session rate limit (they are answered, so they cost the server)', async () => {
    const server = await startServer({ limits: { messagesPerSecond: 10, messageBurst: 20 } });
    await register(server, 'gabe');
    const { messages } = await openSession(
      { ...trustOf(server), user: 'gabe', identity: generateIdentity() },
      { op: 'login', password: TEST_PASSWORD },
      undefined,
      new ServerClock(),
    );
    const told = new Promise<unknown>((resolve) => messages.on('message', (m) => m.type === 'error' && resolve(m)));
    messages.channel.resume();
    for (let i = 0; i < 100; i++) messages.send({ type: 'ping', id: i });
    expect(await told).toMatchObject({ code: 'SALA_E_RATE_LIMIT' });
  });

  it('closes a connection that ships more activity events than its budget, with SALA_E_RATE_LIMIT', async () => {
    const server = await startServer();
    await register(server, 'hugo');
    // A raw session that ignores the pace a real client keeps.
    const { messages } = await openSession({ ...trustOf(server), user: 'hugo', identity: generateIdentity() }, { op: 'login', password: TEST_PASSWORD }, undefined, new ServerClock());
    messages.channel.resume();
    const refused = new Promise<WireMessage>((resolve) => messages.on('message', (m) => m.type === 'error' && resolve(m)));
    const event = (n: number) => ({ id: `e${n}`, at: Date.now(), event: 'message.sent', detail: `n=${n}` });
    for (let b = 0; b < 12; b++) messages.send({ type: 'log.batch', events: Array.from({ length: 256 }, (_, i) => event(b * 256 + i)) });
    expect(await refused).toMatchObject({ type: 'error', code: 'SALA_E_RATE_LIMIT' });
    const admin = AdminClient.fromDataDir(server.dataDir);
    const stored = (await storedEvents(admin, 'hugo')).filter((e) => e.event === 'message.sent');
    expect(stored.length).toBeLessThanOrEqual(2_000);
  });

  it('keeps a client that records events faster than the budget connected: it paces its shipping', async () => {
    const server = await startServer();
    await register(server, 'ivy');
    const { ActivityOutbox } = await import('../../../peer/rendezvous/activity-outbox.js');
    const outbox = new ActivityOutbox({ maxEvents: 5_000 });
    const client = await login(server, 'ivy', { outbox });
    let disconnections = 0;
    client.on('server.disconnected', () => disconnections++);
    for (let i = 0; i < 3_000; i++) outbox.record('message.sent', `n=${i}`, client.clock.now());
    client.flushActivity();
    // The burst goes at once (one batch in flight at a time), the rest at the sustained pace.
    await vi.waitFor(() => expect(outbox.size).toBeLessThanOrEqual(3_000 - 1_700), { timeout: 10_000 });
    expect(disconnections).toBe(0);
    expect(outbox.size).toBeGreaterThan(1_000); // not everything at once: the pace holds
  });

  it('publishes only usable endpoints: IP literals, no unspecified or multicast, loopback only from loopback', () => {
    const endpoints = [
      { host: '10.0.0.5', port: 4000 },
      { host: 'teacher.local', port: 4000 },
      { host: '0.0.0.0', port: 4000 },
      { host: '239.1.2.3', port: 4000 },
      { host: 'ff02::1', port: 4000 },
      { host: '127.0.0.1', port: 4000 },
      { host: 'fe80::1', port: 0 },
      { host: 'fe80::1', port: 4001 },
    ];
    expect(usableEndpoints(endpoints, '10.0.0.5')).toEqual([{ host: '10.0.0.5', port: 4000 }, { host: 'fe80::1', port: 4001 }]);
    expect(usableEndpoints(endpoints, '127.0.0.1')).toContainEqual({ host: '127.0.0.1', port: 4000 });
  });
});

describe('directory', () => {
  it('pushes a new login and a logout to every connected session', async () => {
    const server = await startServer();
    await register(server, 'nina');
    await register(server, 'otto');
    const nina = await login(server, 'nina');
    const cameOnline = nextDirectory(nina, (c) => c.online.some((e) => e.user === 'otto'));
    const otto = await login(server, 'otto');
    const online = (await cameOnline).online.find((e) => e.user === 'otto');
    expect(online?.sessionId).toBe(otto.sessionId);
    const wentOffline = nextDirectory(nina, (c) => c.offline.some((e) => e.user === 'otto'));
    await otto.logout();
    expect((await wentOffline).offline).toContainEqual({ user: 'otto', sessionId: otto.sessionId });
  });

  it('pushes the addresses a peer announces', async () => {
    const server = await startServer();
    await register(server, 'pia');
    await register(server, 'quin');
    const pia = await login(server, 'pia');
    const quin = await login(server, 'quin');
    const seen = nextDirectory(pia, (c) => c.online.some((e) => e.user === 'quin' && e.addresses.length > 0));
    quin.announce([{ host: '127.0.0.1', port: 40_123 }]);
    const entry = (await seen).online.find((e) => e.user === 'quin');
    expect(entry?.addresses).toEqual([{ host: '127.0.0.1', port: 40_123 }]);
  });

  it('delivers a directory larger than one message: the welcome, then updates with the rest', async () => {
    const server = await startServer({ limits: { maxSessionsPerUser: 200, maxConnectionsPerIp: 500 } });
    await register(server, 'crowd');
    const crowd = 130;
    for (let i = 0; i < crowd; i++) await login(server, 'crowd');
    const late = newClient(server, 'crowd');
    const seen = new Set<string>();
    late.on('directory', (change) => change.online.forEach((e) => seen.add(e.sessionId)));
    const welcome = await late.login(TEST_PASSWORD);
    welcome.directory.forEach((e) => seen.add(e.sessionId));
    expect(welcome.directory.length).toBeLessThanOrEqual(100);
    while (seen.size < crowd + 1) await once(late, 'directory', { signal: AbortSignal.timeout(5_000) });
    expect(seen.size).toBe(crowd + 1);
  });

  it('includes everyone online in the welcome', async () => {
    const server = await startServer();
    await register(server, 'rita');
    await register(server, 'sam');
    await login(server, 'rita');
    const sam = newClient(server, 'sam');
    const welcome = await sam.login(TEST_PASSWORD);
    expect(welcome.directory.map((e) => e.user).sort()).toEqual(['rita', 'sam']);
  });
});

describe('server key pinning', () => {
  it('refuses a server whose key differs from the pinned one with SALA_E_SERVER_KEY_MISMATCH, before sending the password', async () => {
    const server = await startServer();
    await register(server, 'tom');
    const err = await rejectsWithSalaError(login(server, 'tom', { expectedFingerprint: 'AAAA-AAAA-AAAA-AAAA' }));
    expect(err.code).toBe('SALA_E_SERVER_KEY_MISMATCH');
    const admin = await AdminClient.fromDataDir(server.dataDir);
    // Nothing reached the login logic: no login.failed was recorded for tom.
    const events = await storedEvents(admin, 'tom');
    expect(events.filter((e) => e.event === 'login.failed')).toEqual([]);
  });

  it('refuses an unconfirmed server key with SALA_E_SERVER_KEY_UNVERIFIED unless unpinned use is allowed', async () => {
    const server = await startServer();
    await register(server, 'uma');
    const err = await rejectsWithSalaError(login(server, 'uma', { expectedFingerprint: undefined as unknown as string }));
    expect(err.code).toBe('SALA_E_SERVER_KEY_UNVERIFIED');
  });
});

describe('activity log', () => {
  it('stores peer events once even when a batch is sent twice, attributed to the session', async () => {
    const server = await startServer();
    await register(server, 'vera');
    const { ActivityOutbox } = await import('../../../peer/rendezvous/activity-outbox.js');
    const outbox = new ActivityOutbox();
    const client = await login(server, 'vera', { outbox });
    const event = outbox.record('message.sent', 'to=walt bytes=12', client.clock.now());
    // Send the batch, then send it again before its ack arrives (as after a lost ack).
    client.flushActivity();
    outbox.requeue();
    client.flushActivity();
    while (outbox.size > 0) await new Promise((r) => setTimeout(r, 5));
    const admin = await AdminClient.fromDataDir(server.dataDir);
    const stored = (await storedEvents(admin, 'vera')).filter((e) => e.event === 'message.sent');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: `vera/${event.id}`, user: 'vera', session: client.sessionId, detail: 'to=walt bytes=12' });
  });

  it('records logins, failed logins, refused sessions, logouts and kicks', async () => {
    const server = await startServer({ limits: { maxSessionsPerUser: 1 } });
    await register(server, 'walt');
    await rejectsWithSalaError(login(server, 'walt', { password: 'nope nope nope' }));
    const first = await login(server, 'walt');
    await rejectsWithSalaError(login(server, 'walt'));
    await first.logout();
    await login(server, 'walt');
    const admin = await AdminClient.fromDataDir(server.dataDir);
    await admin.kick('walt');
    await new Promise((r) => setTimeout(r, 50));
    const events = (await storedEvents(admin, 'walt')).map((e) => e.event);
    for (const name of ['login', 'login.failed', 'session.refused', 'logout', 'kick']) expect(events).toContain(name);
  });
});

describe('bad input and traffic control', () => {
  it('keeps serving others after garbage before the handshake', async () => {
    const server = await startServer();
    await register(server, 'xena');
    const garbage = connect({ host: '127.0.0.1', port: server.info.port });
    garbage.on('error', () => undefined);
    garbage.write('GET / HTTP/1.1\r\n\r\n');
    await once(garbage, 'close');
    expect((await login(server, 'xena')).sessionId).toBeDefined();
  });

  it('closes a connection that completes the handshake with a malformed hello and keeps serving', async () => {
    const server = await startServer();
    await register(server, 'yuri');
    const channel = await connectSecure({
      host: '127.0.0.1',
      port: server.info.port,
      purpose: 'rdv',
      staticKeyPair: generateIdentity().dh,
      payload: () => Buffer.from([0xc1]),
    });
    const failed = once(channel, 'error') as Promise<[SalaError]>;
    channel.resume();
    // The server refused the hello and hung up: this side sees the connection cut.
    expect((await failed)[0].code).toBe('SALA_E_CHANNEL_TRUNCATED');
    expect((await login(server, 'yuri')).sessionId).toBeDefined();
  });

  it('rate-limits a flood of logins from one address with SALA_E_RATE_LIMIT and a retry-after', async () => {
    const server = await startServer({ isLoopbackThrottled: true, throttle: { perIp: { capacity: 5, refillPerSecond: 0.01, maxKeys: 100 } } });
    await register(server, 'zoe');
    let limited: SalaError | undefined;
    for (let i = 0; i < 10 && limited === undefined; i++) {
      const err = await rejectsWithSalaError(login(server, 'zoe', { password: `wrong password ${i}` }));
      if (err.code === 'SALA_E_RATE_LIMIT') limited = err;
      else expect(err.code).toBe('SALA_E_AUTH_FAILED');
    }
    expect(limited?.code).toBe('SALA_E_RATE_LIMIT');
    expect(limited?.details.retryAfterMs).toBeGreaterThan(0);
  });

  it('closes a client that never finishes the handshake (slowloris)', async () => {
    const server = await startServer({ limits: { handshakeTimeoutMs: 200 } });
    const slow = connect({ host: '127.0.0.1', port: server.info.port });
    slow.on('error', () => undefined);
    slow.write(Buffer.from([0, 0, 0, 32, 1]));
    await once(slow, 'close');
  });

  it('refuses connections beyond the per-address cap before any handshake', async () => {
    const server = await startServer({ limits: { maxConnectionsPerIp: 2 } });
    const open = [connect({ host: '127.0.0.1', port: server.info.port }), connect({ host: '127.0.0.1', port: server.info.port })];
    for (const s of open) s.on('error', () => undefined);
    await Promise.all(open.map((s) => once(s, 'connect')));
    await new Promise((r) => setTimeout(r, 50));
    const third = connect({ host: '127.0.0.1', port: server.info.port });
    third.on('error', () => undefined);
    await once(third, 'close');
    for (const s of open) s.destroy();
  });
});

describe('data directory', () => {
  it('refuses a second server on the same data dir with SALA_E_SERVER_RUNNING', async () => {
    const first = await startServer();
    expect((await rejectsWithSalaError(startServer({ dataDir: first.dataDir }))).code).toBe('SALA_E_SERVER_RUNNING');
  });

  it('keeps sessions across a restart so peers resume them', async () => {
    const first = await startServer({ port: 0 });
    await register(first, 'abby');
    const client = await login(first, 'abby');
    const sessionId = client.sessionId;
    const dataDir = first.dataDir;
    const port = first.info.port;
    const disconnected = once(client, 'server.disconnected', { signal: AbortSignal.timeout(5_000) });
    await first.close();
    await disconnected;
    const reconnected = once(client, 'server.reconnected', { signal: AbortSignal.timeout(10_000) });
    const second = await startServer({ dataDir, port });
    await reconnected;
    expect(client.sessionId).toBe(sessionId);
    expect(second.sessions.get(sessionId!)?.link).toBeDefined();
  });
});


describe('data directory lock', () => {
  it('takes over a stale lock that names this very process (a reused pid after a crash)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'server.lock'), JSON.stringify({ pid: process.pid, host: hostname(), startedAt: 'then' }));
    const lock = DataDirLock.acquire(dir, SERVER_LOCK);
    expect(() => DataDirLock.acquire(dir, SERVER_LOCK)).toThrow(expect.objectContaining({ code: 'SALA_E_SERVER_RUNNING' }));
    lock.release();
  });
});
