import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { ConfigInvalidError, DEFAULTS, isPlainObject, SalaError, silentLogger, type Logger } from '../../common/index.js';
import { bearerToken, isTokenEqual, loadOrCreateAdminToken } from './admin-token.js';
import { ADMIN_PORT_FILE, MAX_ADMIN_BODY_BYTES, errorBody } from './admin-protocol.js';
import { AdminRequestError, JSON_CONTENT_TYPE, createRouter, statusForError, type RouteResponse } from './admin-routes.js';
import type { AdminBackend } from './backend.js';
import { loadOrCreateAdminTls } from './certificate.js';
import { readTextIfExists, removeIfExists, writePrivateFile } from '../../common/private-files.js';

export interface AdminApiOptions {
  backend: AdminBackend;
  /** The server's data dir: holds admin.token, admin-cert.pem, admin-key.pem and admin.port. */
  dataDir: string;
  /** A loopback address only: the certificate and the Host check cover nothing else. */
  host?: string;
  /** Default 7421; 0 picks a free port (tests). */
  port?: number;
  logger?: Logger;
}

export interface AdminApi {
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (at most CLOSE_DEADLINE_MS), removes admin.port. */
  close(): Promise<void>;
  /** Drops every connection at once and removes admin.port. */
  destroy(): void;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** Slowloris guards: the whole header block, and the whole request, must arrive within these. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 32;
const CLOSE_DEADLINE_MS = 2_000;

/** One answer for a missing and a wrong token, so a caller learns nothing about which it was. */
const UNAUTHORIZED_BODY = errorBody('SALA_E_ADMIN_REFUSED', 'Unauthorized');

/**
 * The HTTPS admin API on loopback (CONTRACT.md, SECURITY.md M). Every request passes, in order:
 * a Host check (against DNS rebinding: a web page whose name resolves to 127.0.0.1 still sends its
 * own name as Host), the bearer token (constant-time), the route and method, then for a body its
 * content type and a 16 KiB cap enforced while reading. The backend makes every decision; its
 * SalaErrors become 4xx answers with their code, anything else a generic 500.
 */
export async function startAdminApi(options: AdminApiOptions): Promise<AdminApi> {
  const host = options.host ?? '127.0.0.1';
  const requestedPort = options.port ?? DEFAULTS.adminPort;
  if (!LOOPBACK_HOSTS.has(host)) throw new ConfigInvalidError('--admin-host', `must be a loopback address (127.0.0.1, ::1 or localhost), not "${host}"`);
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    throw new ConfigInvalidError('--admin-port', `must be a port number from 0 to 65535, not ${requestedPort}`);
  }
  const logger = options.logger ?? silentLogger;
  const tls = loadOrCreateAdminTls(options.dataDir);
  const token = loadOrCreateAdminToken(options.dataDir);
  const route = createRouter(options.backend);
  let allowedHosts = new Set<string>();

  const server: Server = createServer({
    cert: tls.certPem,
    key: tls.keyPem,
    minVersion: 'TLSv1.2',
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('tlsClientError', (err: Error) => logger.debug('admin.tls.failed', { error: err.message }));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handleRequest(req, res).catch((err: unknown) => {
      logger.error('admin.request.crashed', { error: err instanceof Error ? err.name : 'unknown' });
      res.destroy();
    });
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      // 421 Misdirected Request: this server answers only to its loopback names.
      send(res, 421, JSON_CONTENT_TYPE, errorBody('SALA_E_ADMIN_REFUSED', 'This admin API answers only to 127.0.0.1, localhost or [::1] with its own port.'));
      return;
    }
    const presented = bearerToken(req.headers.authorization);
    if (presented === undefined || !isTokenEqual(presented, token)) {
      res.setHeader('www-authenticate', 'Bearer');
      send(res, 401, JSON_CONTENT_TYPE, UNAUTHORIZED_BODY);
      return;
    }
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    let pattern = '(unmatched)';
    let body: unknown;
    try {
      const match = route(method, url);
      if (match.kind === 'not-found') throw new AdminRequestError(404, 'SALA_E_ADMIN_REFUSED', 'No such admin route.');
      if (match.kind === 'method-not-allowed') {
        res.setHeader('allow', match.allow.join(', '));
        throw new AdminRequestError(405, 'SALA_E_ADMIN_REFUSED', `Use ${match.allow.join(' or ')} for this route.`);
      }
      pattern = match.pattern;
      body = method === 'POST' ? await readJsonBody(req, res) : undefined;
      const answer: RouteResponse = await match.handle(body);
      send(res, answer.status, answer.contentType, answer.body);
      logger.debug('admin.request', { method, route: pattern, status: answer.status });
    } catch (err) {
      if (err instanceof SalaError) {
        const status = statusForError(err);
        send(res, status, JSON_CONTENT_TYPE, errorBody(err.code, err.message));
        logger.debug('admin.request', { method, route: pattern, status, code: err.code });
        return;
      }
      // Not a decision but a fault: the caller gets a generic answer, the log gets the error's name
      // and message with the body's strings blanked (never the body itself: it may hold a password).
      send(res, 500, JSON_CONTENT_TYPE, errorBody('SALA_E_ADMIN_REFUSED', 'The server failed to handle the admin request; see its log.'));
      logger.error('admin.request.failed', {
        method,
        route: pattern,
        error: err instanceof Error ? err.name : typeof err,
        message: err instanceof Error ? redact(err.message, body).slice(0, 200) : undefined,
      });
    }
  }

  try {
    server.listen(requestedPort, host);
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ConfigInvalidError('--admin-port', `${requestedPort} is already in use on ${host}; choose another admin port`);
    throw new SalaError('SALA_E_CONFIG_INVALID', `The admin API cannot listen on ${host}:${requestedPort}: ${(err as Error).message}`, { cause: err });
  }
  server.on('error', (err: Error) => logger.error('admin.server.error', { error: err.message }));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : requestedPort;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  const portFile = join(options.dataDir, ADMIN_PORT_FILE);
  try {
    writePrivateFile(portFile, `${port}\n`);
  } catch (err) {
    server.close();
    server.closeAllConnections();
    throw err;
  }
  logger.info('admin.listening', { host, port });

  /** Only our own port file: a later server on the same data dir may have written its own. */
  const removePortFile = (): void => {
    try {
      if (readTextIfExists(portFile)?.trim() === String(port)) removeIfExists(portFile);
    } catch (err) {
      logger.warn('admin.port-file.remove-failed', { error: (err as Error).message });
    }
  };

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      if (closing !== undefined) return closing;
      removePortFile();
      closing = new Promise<void>((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), CLOSE_DEADLINE_MS);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
    destroy(): void {
      removePortFile();
      if (closing === undefined) closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/**
 * An error message with every string of the request body (a password, say) blanked out, in case a
 * backend fault quotes its input. Names are blanked too: one rule is easier to trust.
 */
function redact(message: string, body: unknown): string {
  if (!isPlainObject(body)) return message;
  let result = message;
  for (const value of Object.values(body)) {
    if (typeof value === 'string' && value !== '') result = result.split(value).join('[redacted]');
  }
  return result;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body, 'utf8'),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type = '', ...parameters] = header.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return parameters.every((p) => p === '' || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

/**
 * A POST body: none (undefined) when the request has none, else JSON within MAX_ADMIN_BODY_BYTES.
 * A declared Content-Length over the cap is refused before a byte is read; a chunked body is
 * counted as it arrives and reading stops at the first byte past the cap. Either way the answer
 * closes the connection, so the rest of the body is never read into memory.
 */
async function readJsonBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const declared = req.headers['content-length'];
  const hasBody = declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return undefined;
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new AdminRequestError(415, 'SALA_E_ADMIN_REFUSED', 'Send request bodies as application/json.');
  }
  const tooLarge = (): AdminRequestError => {
    res.setHeader('connection', 'close');
    return new AdminRequestError(413, 'SALA_E_ADMIN_REFUSED', `Request bodies are limited to ${MAX_ADMIN_BODY_BYTES} bytes.`);
  };
  if (declared !== undefined && Number(declared) > MAX_ADMIN_BODY_BYTES) throw tooLarge();

  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > MAX_ADMIN_BODY_BYTES) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    // A client that disconnects mid-body: without this the read would wait forever.
    const onClose = (): void => onError(new Error('the request ended before its body was complete'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AdminRequestError(400, 'SALA_E_ADMIN_REFUSED', 'The request body is not valid JSON.');
  }
}
