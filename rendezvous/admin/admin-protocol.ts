import { isPlainObject, isSalaErrorCode, SalaError, type SalaErrorCode } from '../../common/index.js';
import type { AdminSessionView, AdminUserView } from './backend.js';

/**
 * What the admin API server and the admin commands agree on, besides the route paths.
 *
 * Routes (all need `Authorization: Bearer <token>`; request and response bodies are JSON unless said):
 *   GET  /api/logs?format=csv|json&user=&since=&until=   → the report (JSON array, or text/csv)
 *   GET  /api/users                                        → AdminUserView[]
 *   POST /api/users                 {name, password}       → 201 AdminUserView
 *   POST /api/users/:name/disable                          → AdminUserView
 *   POST /api/users/:name/enable                           → AdminUserView
 *   POST /api/users/:name/password  {password}             → AdminUserView
 *   GET  /api/sessions                                     → AdminSessionView[]
 *   POST /api/kick                  {target}               → {kicked: AdminSessionView[]}
 * Errors: `{"error":{"code":"SALA_E_…","message":"…"}}` with a 4xx/5xx status.
 */

/** The port the admin API listens on, one line, written after listening and removed on close. */
export const ADMIN_PORT_FILE = 'admin.port';

/** Largest request body accepted; the biggest legitimate one is a name plus a 1,024-byte password. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;

export interface AdminErrorBody {
  error: { code: string; message: string };
}

export interface KickResult {
  kicked: AdminSessionView[];
}

export function errorBody(code: SalaErrorCode, message: string): string {
  const body: AdminErrorBody = { error: { code, message } };
  return JSON.stringify(body);
}

/** Reads `{"error":{"code","message"}}`; anything else gives undefined. */
export function parseErrorBody(value: unknown): { code: string; message: string } | undefined {
  if (!isPlainObject(value)) return undefined;
  const inner = value['error'];
  if (!isPlainObject(inner)) return undefined;
  const { code, message } = inner;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return { code, message };
}

function malformed(what: string): SalaError {
  return new SalaError('SALA_E_ADMIN_REFUSED', `The server sent a malformed ${what}; are the server and this command the same Sala version?`);
}

function stringField(value: Record<string, unknown>, key: string, what: string): string {
  const field = value[key];
  if (typeof field !== 'string') throw malformed(what);
  return field;
}

export function parseUserView(value: unknown): AdminUserView {
  if (!isPlainObject(value) || typeof value['isDisabled'] !== 'boolean') throw malformed('user record');
  return {
    name: stringField(value, 'name', 'user record'),
    isDisabled: value['isDisabled'],
    createdAt: stringField(value, 'createdAt', 'user record'),
    passwordChangedAt: stringField(value, 'passwordChangedAt', 'user record'),
  };
}

export function parseSessionView(value: unknown): AdminSessionView {
  if (!isPlainObject(value) || typeof value['isConnected'] !== 'boolean') throw malformed('session record');
  return {
    sessionId: stringField(value, 'sessionId', 'session record'),
    user: stringField(value, 'user', 'session record'),
    address: stringField(value, 'address', 'session record'),
    since: stringField(value, 'since', 'session record'),
    isConnected: value['isConnected'],
  };
}

export function parseArray<T>(value: unknown, parseItem: (item: unknown) => T, what: string): T[] {
  if (!Array.isArray(value)) throw malformed(what);
  return value.map((item: unknown) => parseItem(item));
}

export function parseKickResult(value: unknown): KickResult {
  if (!isPlainObject(value)) throw malformed('kick result');
  return { kicked: parseArray(value['kicked'], parseSessionView, 'kick result') };
}

/** The error code to surface for a server's answer: its own when Sala knows it, else ADMIN_REFUSED. */
export function knownCodeOr(code: string | undefined, fallback: SalaErrorCode): SalaErrorCode {
  return isSalaErrorCode(code) ? code : fallback;
}
