/**
 * Shared pieces of the admin API tests: a temporary data dir, an in-memory AdminBackend, and a raw
 * HTTPS caller that trusts the server's own certificate.
 *
 * The fake backend is deliberate: the real one (accounts, sessions and log store behind the
 * AdminBackend interface) is being written at the same time. These tests are about the API layer —
 * Host check, token, limits, routing and error mapping — which only ever sees the interface.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import { startAdminApi, type AdminApi } from '../../../../rendezvous/admin/admin-api.js';
import { ADMIN_TOKEN_FILE } from '../../../../rendezvous/admin/admin-token.js';
import type { AdminBackend, AdminSessionView, AdminUserView } from '../../../../rendezvous/admin/backend.js';
import { ADMIN_CERT_FILE } from '../../../../rendezvous/admin/certificate.js';
import type { LogQuery, LogRecord } from '../../../../rendezvous/store/store.js';
import type { Logger, LogFields } from '../../../../common/log/logger.js';

export function tempDataDir(prefix = 'sala-admin-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const AT = '2025-01-02T03:04:05.000Z';


export interface FakeBackend extends AdminBackend {
  users: Map<string, AdminUserView & { password: string }>;
  sessions: AdminSessionView[];
  logs: LogRecord[];
  /** Every query the logs route passed on. */
  logQueries: LogQuery[];
  /** When set, every method throws it. */
  failWith?: unknown;
}

function view(user: AdminUserView & { password: string }): AdminUserView {
  return { name: user.name, isDisabled: user.isDisabled, createdAt: user.createdAt, passwordChangedAt: user.passwordChangedAt };
}

export function fakeBackend(): FakeBackend {
  const backend: FakeBackend = {
    users: new Map(),
    sessions: [],
    logs: [],
    logQueries: [],
    async listUsers() {
      check();
      return [...backend.users.values()].map(view);
    },
    async addUser(name, password) {
      check();
      if (!/^[a-z0-9_-]{2,32}$/.test(name)) throw new SalaError('SALA_E_INVALID_NAME', `"${name}" is not a valid user name.`);
      if (backend.users.has(name)) throw new SalaError('SALA_E_USER_EXISTS', `An account named ${name} already exists.`);
      if (password.length < 8) throw new SalaError('SALA_E_PASSWORD_REJECTED', 'Passwords need at least 8 characters.');
      const user = { name, password, isDisabled: false, createdAt: AT, passwordChangedAt: AT };
      backend.users.set(name, user);
      return view(user);
    },
    async setUserDisabled(name, isDisabled) {
      check();
      const user = backend.users.get(name);
      if (user === undefined) throw new SalaError('SALA_E_USER_UNKNOWN', `There is no account named "${name}".`);
      user.isDisabled = isDisabled;
      return view(user);
    },
    async changePassword(name, password) {
      check();
      const user = backend.users.get(name);
      if (user === undefined) throw new SalaError('SALA_E_USER_UNKNOWN', `There is no account named "${name}".`);
      if (password.length < 8) throw new SalaError('SALA_E_PASSWORD_REJECTED', 'Passwords need at least 8 characters.');
      user.password = password;
      return view(user);
    },
    async listSessions() {
      check();
      return backend.sessions.map((s) => ({ ...s }));
    },
    async kick(target) {
      check();
      const ended = backend.sessions.filter((s) => s.sessionId === target || s.user === target);
      if (ended.length === 0) throw new SalaError('SALA_E_SESSION_UNKNOWN', `No session or user "${target}" is connected.`);
      backend.sessions = backend.sessions.filter((s) => !ended.includes(s));
      return ended;
    },
    async queryLogs(query) {
      check();
      backend.logQueries.push(query);
      return backend.logs.filter((r) => query.user === undefined || r.user === query.user);
    },
  };
  function check(): void {
    if (backend.failWith !== undefined) throw backend.failWith;
  }
  return backend;
}

export function sampleSession(overrides: Partial<AdminSessionView> = {}): AdminSessionView {
  return { sessionId: 's-1', user: 'alice', address: '192.168.1.20', since: AT, isConnected: true, ...overrides };
}

export function sampleLog(overrides: Partial<LogRecord> = {}): LogRecord {
  return { id: 'e-1', at: AT, user: 'alice', session: 's-1', event: 'login', detail: '', source: 'server', ...overrides };
}

/** A logger that keeps every line (to check that secrets never reach it). */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (event: string, fields: LogFields = {}) => {
    lines.push(JSON.stringify({ level, event, ...fields }));
  };
  return { lines, debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

export interface RunningApi {
  api: AdminApi;
  backend: FakeBackend;
  dataDir: string;
  token: string;
  certPem: string;
}

export async function startTestApi(options: { logger?: Logger; backend?: FakeBackend } = {}): Promise<RunningApi> {
  const dataDir = tempDataDir();
  const backend = options.backend ?? fakeBackend();
  const api = await startAdminApi({ backend, dataDir, port: 0, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  onTestFinished(() => api.close());
  const token = readFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
  const certPem = readFileSync(join(dataDir, ADMIN_CERT_FILE), 'utf8');
  return { api, backend, dataDir, token, certPem };
}

export interface CallOptions {
  method?: string;
  path: string;
  /** Bearer token; `null` sends no Authorization header. Defaults to the right token. */
  token?: string | null;
  headers?: Record<string, string>;
  /** An object is sent as JSON with content-type application/json. */
  body?: unknown;
}

export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
}

/** One HTTPS request to the API, trusting only its certificate (validated as a normal TLS client would). */
export function call(running: RunningApi, options: CallOptions): Promise<CallResult> {
  const headers: Record<string, string> = { host: `127.0.0.1:${running.api.port}` };
  const token = options.token === undefined ? running.token : options.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  let payload: string | undefined;
  if (options.body !== undefined) {
    payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  Object.assign(headers, options.headers ?? {});
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: running.api.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers,
        ca: running.certPem,
        // Fixed, so the TLS name check does not follow a Host header a test sets on purpose.
        servername: 'localhost',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export function errorOf(result: CallResult): { code: string; message: string } {
  return (result.json() as { error: { code: string; message: string } }).error;
}
