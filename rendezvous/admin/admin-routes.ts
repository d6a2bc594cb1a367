import { isPlainObject, SalaError, type SalaErrorCode } from '../../common/index.js';
import { LOG_EXPORT_MEDIA_TYPES, formatLogsCsv, formatLogsJson, parseLogQuery } from '../logs/index.js';
import type { AdminBackend } from './backend.js';
import type { KickResult } from './admin-protocol.js';

/**
 * The admin API's routes: match a method and path, check the body's shape, call the backend and
 * serialise its answer. Authentication, Host checks and body limits happen before (admin-api.ts);
 * every decision about users and sessions is the backend's.
 */

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export interface RouteResponse {
  status: number;
  contentType: string;
  body: string;
}

export type RouteMatch =
  | {
      kind: 'found';
      /** The route pattern (for logs: it never carries a user name or other request data). */
      pattern: string;
      handle: (body: unknown) => Promise<RouteResponse>;
    }
  | { kind: 'method-not-allowed'; allow: readonly string[] }
  | { kind: 'not-found' };

/** A request the API refuses before or instead of calling the backend, with its HTTP status. */
export class AdminRequestError extends SalaError {
  readonly status: number;

  constructor(status: number, code: SalaErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

type Handler = (params: readonly string[], url: URL, body: unknown) => Promise<RouteResponse>;

interface Route {
  pattern: string;
  /** Matches the path segments after `/api/`; returns the path parameters, or undefined. */
  match: (segments: readonly string[]) => string[] | undefined;
  methods: Readonly<Record<string, Handler>>;
}

const LOG_QUERY_KEYS = new Set(['format', 'user', 'since', 'until']);
/** A user name is at most 32 characters once normalised; anything much longer is not one. */
const MAX_PATH_PARAM_CHARS = 256;

function json(status: number, value: unknown): RouteResponse {
  return { status, contentType: JSON_CONTENT_TYPE, body: JSON.stringify(value) };
}

function exact(...expected: string[]): Route['match'] {
  return (segments) => (segments.length === expected.length && expected.every((s, i) => segments[i] === s) ? [] : undefined);
}

/** `users/:name/<action>` */
function userAction(action: string): Route['match'] {
  return (segments) => (segments.length === 3 && segments[0] === 'users' && segments[2] === action ? [segments[1] ?? ''] : undefined);
}

/** Reads a JSON object body with exactly the given string fields. */
function stringFields<K extends string>(body: unknown, keys: readonly K[]): Record<K, string> {
  const shape = `{${keys.map((key) => `"${key}": string`).join(', ')}}`;
  const refuse = (): AdminRequestError =>
    new AdminRequestError(400, 'SALA_E_ADMIN_REFUSED', `The request body must be the JSON object ${shape}.`);
  if (!isPlainObject(body)) throw refuse();
  const extra = Object.keys(body).filter((key) => !(keys as readonly string[]).includes(key));
  if (extra.length > 0) throw refuse();
  const result = {} as Record<K, string>;
  for (const key of keys) {
    const value = body[key];
    if (typeof value !== 'string') throw refuse();
    result[key] = value;
  }
  return result;
}

function logQueryInput(url: URL): { user?: string; since?: string; until?: string; format?: string } {
  const input: { user?: string; since?: string; until?: string; format?: string } = {};
  for (const key of new Set(url.searchParams.keys())) {
    if (!LOG_QUERY_KEYS.has(key)) {
      throw new AdminRequestError(400, 'SALA_E_CONFIG_INVALID', `Unknown query parameter "${key.slice(0, 40)}"; use format, user, since and until.`);
    }
    const values = url.searchParams.getAll(key);
    if (values.length > 1) throw new AdminRequestError(400, 'SALA_E_CONFIG_INVALID', `Query parameter "${key}" is given more than once.`);
    const value = values[0] ?? '';
    // `user=&since=` (empty) means "not given", as in the contract's example URL.
    if (value !== '') input[key as 'format' | 'user' | 'since' | 'until'] = value;
  }
  return input;
}

function routes(backend: AdminBackend): readonly Route[] {
  return [
    {
      pattern: '/api/logs',
      match: exact('logs'),
      methods: {
        GET: async (_params, url) => {
          const { query, format } = parseLogQuery(logQueryInput(url));
          const records = await backend.queryLogs(query);
          const body = format === 'csv' ? formatLogsCsv(records) : formatLogsJson(records);
          return { status: 200, contentType: LOG_EXPORT_MEDIA_TYPES[format], body };
        },
      },
    },
    {
      pattern: '/api/users',
      match: exact('users'),
      methods: {
        GET: async () => json(200, await backend.listUsers()),
        POST: async (_params, _url, body) => {
          const { name, password } = stringFields(body, ['name', 'password']);
          return json(201, await backend.addUser(name, password));
        },
      },
    },
    {
      pattern: '/api/users/:name/disable',
      match: userAction('disable'),
      methods: { POST: async ([name = '']) => json(200, await backend.setUserDisabled(name, true)) },
    },
    {
      pattern: '/api/users/:name/enable',
      match: userAction('enable'),
      methods: { POST: async ([name = '']) => json(200, await backend.setUserDisabled(name, false)) },
    },
    {
      pattern: '/api/users/:name/password',
      match: userAction('password'),
      methods: {
        POST: async ([name = ''], _url, body) => {
          const { password } = stringFields(body, ['password']);
          return json(200, await backend.changePassword(name, password));
        },
      },
    },
    {
      pattern: '/api/sessions',
      match: exact('sessions'),
      methods: { GET: async () => json(200, await backend.listSessions()) },
    },
    {
      pattern: '/api/kick',
      match: exact('kick'),
      methods: {
        POST: async (_params, _url, body) => {
          const { target } = stringFields(body, ['target']);
          const result: KickResult = { kicked: await backend.kick(target) };
          return json(200, result);
        },
      },
    },
  ];
}

/** Builds the matcher once per server; `match` is then called per request. */
export function createRouter(backend: AdminBackend): (method: string, url: URL) => RouteMatch {
  const table = routes(backend);
  return (method, url) => {
    if (!url.pathname.startsWith('/api/')) return { kind: 'not-found' };
    const segments = url.pathname.slice('/api/'.length).split('/');
    for (const route of table) {
      const rawParams = route.match(segments);
      if (rawParams === undefined) continue;
      const handler = route.methods[method];
      if (handler === undefined) return { kind: 'method-not-allowed', allow: Object.keys(route.methods) };
      const params = rawParams.map(decodePathParam);
      return { kind: 'found', pattern: route.pattern, handle: (body) => handler(params, url, body) };
    }
    return { kind: 'not-found' };
  };
}

function decodePathParam(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new AdminRequestError(400, 'SALA_E_INVALID_NAME', 'The user name in the path is not valid percent-encoding.');
  }
  if (decoded.length > MAX_PATH_PARAM_CHARS) {
    throw new AdminRequestError(400, 'SALA_E_INVALID_NAME', 'The user name in the path is too long.');
  }
  return decoded;
}

/** HTTP status for a SalaError from the backend. Codes not listed are requests the backend refused (400). */
const STATUS_BY_CODE: Readonly<Partial<Record<SalaErrorCode, number>>> = Object.freeze({
  SALA_E_USER_EXISTS: 409,
  SALA_E_SESSION_UNKNOWN: 404,
  SALA_E_USER_UNKNOWN: 404,
  SALA_E_INVALID_NAME: 400,
  SALA_E_PASSWORD_REJECTED: 400,
  SALA_E_CONFIG_INVALID: 400,
  SALA_E_PROTOCOL_INVALID_FIELD: 400,
  SALA_E_RATE_LIMIT: 429,
  SALA_E_BUSY: 429,
});

export function statusForError(err: SalaError): number {
  if (err instanceof AdminRequestError) return err.status;
  return STATUS_BY_CODE[err.code] ?? 400;
}
