import { X509Certificate } from 'node:crypto';
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { SalaError } from '../../common/index.js';
import { ADMIN_TOKEN_FILE, parseTokenFile } from './admin-token.js';
import {
  ADMIN_PORT_FILE,
  knownCodeOr,
  parseArray,
  parseErrorBody,
  parseKickResult,
  parseSessionView,
  parseUserView,
} from './admin-protocol.js';
import type { AdminSessionView, AdminUserView } from './backend.js';
import { ADMIN_CERT_FILE } from './certificate.js';
import { readTextIfExists } from '../../common/private-files.js';

export type LogExportFormat = 'csv' | 'json';

export interface LogExportRequest {
  format: LogExportFormat;
  user?: string | undefined;
  /** Inclusive, ISO 8601. */
  since?: string | undefined;
  /** Exclusive, ISO 8601. */
  until?: string | undefined;
}

export interface AdminClientOptions {
  /** Whole-request deadline; default 30 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Returned by checkServerIdentity when the server shows any certificate but the pinned one. */
class PinMismatchError extends Error {
  readonly code = 'SALA_ADMIN_CERT_PIN_MISMATCH';
}

/**
 * checkServerIdentity for a pinned certificate: the presented certificate must be the file's, byte
 * for byte (same SHA-256 fingerprint), whatever names it carries. With `ca` set to that same
 * certificate OpenSSL already refuses any other one; this check keeps the pin exact even if that
 * trust setup changes (a re-issued certificate for the same key, a CA-capable one).
 */
export function pinnedIdentityCheck(fingerprint256: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => (cert.fingerprint256 === fingerprint256 ? undefined : new PinMismatchError('certificate does not match admin-cert.pem'));
}

interface RawResponse {
  status: number;
  text: string;
}

/**
 * Talks to the admin API of the server that owns a data dir. Everything it needs is in that dir:
 * the port (admin.port), the token (admin.token) and the certificate to pin (admin-cert.pem).
 *
 * Pinning: the connection trusts only that certificate as its CA, and checkServerIdentity then
 * compares the presented certificate's SHA-256 fingerprint with the file's. Another program that
 * took the port (a squatter) fails the TLS handshake, before the token is ever sent; that is
 * reported as SALA_E_ADMIN_UNREACHABLE (no Sala server of this data dir is there) with a message
 * that names the certificate mismatch.
 */
export class AdminClient {
  readonly #dataDir: string;
  readonly #port: number;
  readonly #token: string;
  readonly #certPem: string;
  readonly #fingerprint256: string;
  readonly #timeoutMs: number;

  private constructor(dataDir: string, port: number, token: string, certPem: string, fingerprint256: string, timeoutMs: number) {
    this.#dataDir = dataDir;
    this.#port = port;
    this.#token = token;
    this.#certPem = certPem;
    this.#fingerprint256 = fingerprint256;
    this.#timeoutMs = timeoutMs;
  }

  static fromDataDir(dataDir: string, options: AdminClientOptions = {}): AdminClient {
    const token = parseTokenFile(readTextIfExists(join(dataDir, ADMIN_TOKEN_FILE)));
    const certPem = readTextIfExists(join(dataDir, ADMIN_CERT_FILE));
    const port = parsePortFile(readTextIfExists(join(dataDir, ADMIN_PORT_FILE)));
    if (token === undefined || certPem === undefined || port === undefined) throw notRunning(dataDir);
    let fingerprint256: string;
    try {
      fingerprint256 = new X509Certificate(certPem).fingerprint256;
    } catch (err) {
      throw new SalaError('SALA_E_ADMIN_UNREACHABLE', `${join(dataDir, ADMIN_CERT_FILE)} is not a certificate; restart the server with \`sala-rendezvous start --data ${dataDir}\` to make a new one.`, { cause: err });
    }
    return new AdminClient(dataDir, port, token, certPem, fingerprint256, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  get port(): number {
    return this.#port;
  }

  async listUsers(): Promise<AdminUserView[]> {
    return parseArray(await this.#json('GET', '/api/users'), parseUserView, 'user list');
  }

  async addUser(name: string, password: string): Promise<AdminUserView> {
    return parseUserView(await this.#json('POST', '/api/users', { name, password }));
  }

  async disableUser(name: string): Promise<AdminUserView> {
    return parseUserView(await this.#json('POST', `/api/users/${encodeURIComponent(name)}/disable`));
  }

  async enableUser(name: string): Promise<AdminUserView> {
    return parseUserView(await this.#json('POST', `/api/users/${encodeURIComponent(name)}/enable`));
  }

  async changePassword(name: string, password: string): Promise<AdminUserView> {
    return parseUserView(await this.#json('POST', `/api/users/${encodeURIComponent(name)}/password`, { password }));
  }

  async listSessions(): Promise<AdminSessionView[]> {
    return parseArray(await this.#json('GET', '/api/sessions'), parseSessionView, 'session list');
  }

  /** Ends a session (by id) or all of a user's sessions (by name); returns the ended ones. */
  async kick(target: string): Promise<AdminSessionView[]> {
    return parseKickResult(await this.#json('POST', '/api/kick', { target })).kicked;
  }

  /** The activity report as the server formats it (CSV or JSON text). */
  async exportLogs(query: LogExportRequest): Promise<string> {
    const params = new URLSearchParams({ format: query.format });
    if (query.user !== undefined) params.set('user', query.user);
    if (query.since !== undefined) params.set('since', query.since);
    if (query.until !== undefined) params.set('until', query.until);
    return (await this.#request('GET', `/api/logs?${params.toString()}`)).text;
  }

  async #json(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const { text } = await this.#request(method, path, body);
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new SalaError('SALA_E_ADMIN_REFUSED', 'The server sent an answer that is not JSON.', { cause: err });
    }
  }

  #request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<RawResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = {
      host: `127.0.0.1:${this.#port}`,
      authorization: `Bearer ${this.#token}`,
      accept: 'application/json, text/csv',
    };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload, 'utf8');
    }
    const options: RequestOptions = {
      host: '127.0.0.1',
      port: this.#port,
      method,
      path,
      headers,
      agent: false,
      ca: this.#certPem,
      checkServerIdentity: pinnedIdentityCheck(this.#fingerprint256),
    };
    return new Promise<RawResponse>((resolve, reject) => {
      let isTcpConnected = false;
      let isTlsVerified = false;
      const req = request(options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => reject(this.#unreachable(err)));
        res.on('end', () => {
          const raw = { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') };
          if (raw.status >= 200 && raw.status < 300) resolve(raw);
          else reject(this.#refusal(raw));
        });
      });
      req.on('socket', (socket) => {
        socket.once('connect', () => {
          isTcpConnected = true;
        });
        socket.once('secureConnect', () => {
          isTlsVerified = true;
        });
      });
      req.setTimeout(this.#timeoutMs, () => {
        req.destroy(new SalaError('SALA_E_ADMIN_UNREACHABLE', `The server on 127.0.0.1:${this.#port} did not answer within ${this.#timeoutMs} ms.`));
      });
      req.on('error', (err: Error) => {
        if (err instanceof SalaError) reject(err);
        else if (isTcpConnected && !isTlsVerified) reject(this.#impostor(err));
        else reject(this.#unreachable(err));
      });
      req.end(payload);
    });
  }

  #unreachable(cause: unknown): SalaError {
    return notRunning(this.#dataDir, cause);
  }

  #impostor(cause: unknown): SalaError {
    const certPath = join(this.#dataDir, ADMIN_CERT_FILE);
    return new SalaError(
      'SALA_E_ADMIN_UNREACHABLE',
      `The program on 127.0.0.1:${this.#port} is not the Sala server of data directory ${this.#dataDir}: it did not ` +
        `present the certificate in ${certPath}, so no admin token was sent. Stop whatever holds that port, then ` +
        `start the server with \`sala-rendezvous start --data ${this.#dataDir}\`.`,
      { cause },
    );
  }

  #refusal(raw: RawResponse): SalaError {
    if (raw.status === 401) {
      return new SalaError(
        'SALA_E_ADMIN_REFUSED',
        `The server refused the admin token in ${join(this.#dataDir, ADMIN_TOKEN_FILE)}; run this command as the ` +
          "server's user with the same --data, or restart the server.",
      );
    }
    let parsed: { code: string; message: string } | undefined;
    try {
      parsed = parseErrorBody(JSON.parse(raw.text) as unknown);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined) return new SalaError('SALA_E_ADMIN_REFUSED', `The server refused the request (HTTP ${raw.status}).`);
    return new SalaError(knownCodeOr(parsed.code, 'SALA_E_ADMIN_REFUSED'), parsed.message);
  }
}

function parsePortFile(text: string | undefined): number | undefined {
  const line = text?.trim();
  if (line === undefined || !/^\d{1,5}$/.test(line)) return undefined;
  const port = Number(line);
  return port >= 1 && port <= 65_535 ? port : undefined;
}

function notRunning(dataDir: string, cause?: unknown): SalaError {
  return new SalaError(
    'SALA_E_ADMIN_UNREACHABLE',
    `No running Sala server found for data directory ${dataDir}; start it with \`sala-rendezvous start --data ${dataDir}\`.`,
    cause === undefined ? undefined : { cause },
  );
}
