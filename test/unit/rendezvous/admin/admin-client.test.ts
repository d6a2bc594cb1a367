/**
 * AdminClient against a real admin API (fake backend, see helpers.ts) and against impostors.
 *
 * Choice documented here and in admin-client.ts: a program on admin.port that does not present the
 * pinned certificate (a port squatter) is refused during the TLS handshake, before the token is
 * sent, and reported as SALA_E_ADMIN_UNREACHABLE — no Sala server of this data dir is there — with a
 * message that says the certificate did not match.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SalaError, type SalaErrorCode } from '../../../../common/errors.js';
import { AdminClient, pinnedIdentityCheck } from '../../../../rendezvous/admin/admin-client.js';
import { ADMIN_PORT_FILE } from '../../../../rendezvous/admin/admin-protocol.js';
import { ADMIN_TOKEN_FILE, generateAdminToken } from '../../../../rendezvous/admin/admin-token.js';
import { ADMIN_CERT_FILE, ADMIN_KEY_FILE, createSelfSignedCertificate, type AdminTls } from '../../../../rendezvous/admin/certificate.js';
import { sampleLog, sampleSession, startTestApi, tempDataDir } from './helpers.js';
import { rejectsWithSalaError } from '../../../helpers/errors.js';


function thrownBy(fn: () => unknown): SalaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SalaError);
    return err as SalaError;
  }
  throw new Error('expected a SalaError');
}

/** An HTTPS server with its own certificate that counts the requests it receives. */
async function squatter(tls: Pick<AdminTls, 'certPem' | 'keyPem'>): Promise<{ port: number; requests: () => number }> {
  let requests = 0;
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => {
    requests += 1;
    res.end('[]');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, requests: () => requests };
}

describe('AdminClient against the running API', () => {
  it('creates and lists accounts', async () => {
    const running = await startTestApi();
    const client = AdminClient.fromDataDir(running.dataDir);
    expect(await client.addUser('bob', 'password1')).toMatchObject({ name: 'bob', isDisabled: false });
    expect((await client.listUsers()).map((u) => u.name)).toEqual(['bob']);
  });

  it('disables and enables an account', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const client = AdminClient.fromDataDir(running.dataDir);
    expect((await client.disableUser('bob')).isDisabled).toBe(true);
    expect((await client.enableUser('bob')).isDisabled).toBe(false);
  });

  it('changes a password', async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    await AdminClient.fromDataDir(running.dataDir).changePassword('bob', 'password2');
    expect(running.backend.users.get('bob')?.password).toBe('password2');
  });

  it('lists sessions and kicks one', async () => {
    const running = await startTestApi();
    running.backend.sessions = [sampleSession()];
    const client = AdminClient.fromDataDir(running.dataDir);
    expect(await client.listSessions()).toEqual([sampleSession()]);
    expect(await client.kick('alice')).toEqual([sampleSession()]);
    expect(running.backend.sessions).toEqual([]);
  });

  it('exports the logs as CSV text with the query passed on', async () => {
    const running = await startTestApi();
    running.backend.logs = [sampleLog()];
    const csv = await AdminClient.fromDataDir(running.dataDir).exportLogs({ format: 'csv', user: 'alice', since: '2025-01-01T00:00:00.000Z' });
    expect(csv.split('\r\n')[0]).toBe('id,at,user,session,event,detail');
    expect(running.backend.logQueries).toEqual([{ user: 'alice', since: '2025-01-01T00:00:00.000Z' }]);
  });

  it("surfaces the server's code for a refused request (SALA_E_USER_EXISTS)", async () => {
    const running = await startTestApi();
    await running.backend.addUser('bob', 'password1');
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).addUser('bob', 'password2'));
    expect(err.code).toBe('SALA_E_USER_EXISTS');
  });

  it('surfaces SALA_E_SESSION_UNKNOWN for a kick that matches nothing', async () => {
    const running = await startTestApi();
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).kick('nobody'));
    expect(err.code).toBe('SALA_E_SESSION_UNKNOWN');
  });

  it('turns a code it does not know into SALA_E_ADMIN_REFUSED, keeping the message', async () => {
    const running = await startTestApi();
    running.backend.failWith = new SalaError('SALA_E_FROM_A_NEWER_SERVER' as SalaErrorCode, 'Something new went wrong.');
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_REFUSED');
    expect(err.message).toBe('Something new went wrong.');
  });

  it('reports a token the server does not accept as SALA_E_ADMIN_REFUSED naming admin.token', async () => {
    const running = await startTestApi();
    writeFileSync(join(running.dataDir, ADMIN_TOKEN_FILE), `${generateAdminToken()}\n`);
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_REFUSED');
    expect(err.message).toContain(ADMIN_TOKEN_FILE);
  });
});

describe('AdminClient refuses what is not its server', () => {
  it('refuses a port squatter with another certificate, before sending the token', async () => {
    const running = await startTestApi();
    const impostor = await squatter(createSelfSignedCertificate());
    writeFileSync(join(running.dataDir, ADMIN_PORT_FILE), `${impostor.port}\n`);
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
    expect(err.message).toContain(ADMIN_CERT_FILE);
    expect(impostor.requests()).toBe(0);
  });

  it('refuses a re-issued certificate for the same key: only the pinned certificate itself passes', async () => {
    const running = await startTestApi();
    const privateKey = createPrivateKey(readFileSync(join(running.dataDir, ADMIN_KEY_FILE), 'utf8'));
    const reissued = createSelfSignedCertificate({ privateKey });
    const impostor = await squatter(reissued);
    writeFileSync(join(running.dataDir, ADMIN_PORT_FILE), `${impostor.port}\n`);
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
    expect(impostor.requests()).toBe(0);
  });

  it('accepts, in the identity check, only the exact pinned certificate', () => {
    const pinned = new X509Certificate(createSelfSignedCertificate().certPem).fingerprint256;
    const other = new X509Certificate(createSelfSignedCertificate().certPem).fingerprint256;
    const check = pinnedIdentityCheck(pinned);
    expect(check('127.0.0.1', { fingerprint256: pinned } as PeerCertificate)).toBeUndefined();
    expect(check('127.0.0.1', { fingerprint256: other } as PeerCertificate)).toBeInstanceOf(Error);
  });

  it('reports a closed port (a stale admin.port) as SALA_E_ADMIN_UNREACHABLE', async () => {
    const running = await startTestApi();
    const port = running.api.port;
    await running.api.close();
    writeFileSync(join(running.dataDir, ADMIN_PORT_FILE), `${port}\n`);
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
    expect(err.message).toBe(
      `No running Sala server found for data directory ${running.dataDir}; start it with \`sala-rendezvous start --data ${running.dataDir}\`.`,
    );
  });

  it('reports a plain TCP listener that is not TLS as SALA_E_ADMIN_UNREACHABLE', async () => {
    const running = await startTestApi();
    const plain = createTcpServer((socket) => {
      socket.resume(); // read (and drop) the ClientHello, so the client's close is seen
      socket.end('HTTP/1.1 200 OK\r\n\r\n');
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    onTestFinished(() => new Promise<void>((resolve) => plain.close(() => resolve())));
    writeFileSync(join(running.dataDir, ADMIN_PORT_FILE), `${(plain.address() as AddressInfo).port}\n`);
    const err = await rejectsWithSalaError(AdminClient.fromDataDir(running.dataDir).listUsers());
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
  });

  it('fails with SALA_E_ADMIN_UNREACHABLE for a data dir without a server', () => {
    const dataDir = tempDataDir();
    const err = thrownBy(() => AdminClient.fromDataDir(dataDir));
    expect(err.code).toBe('SALA_E_ADMIN_UNREACHABLE');
    expect(err.message).toContain(`sala-rendezvous start --data ${dataDir}`);
  });

  it.each([ADMIN_TOKEN_FILE, ADMIN_CERT_FILE, ADMIN_PORT_FILE])('fails with SALA_E_ADMIN_UNREACHABLE when %s is missing', async (file) => {
    const running = await startTestApi();
    rmSync(join(running.dataDir, file));
    expect(thrownBy(() => AdminClient.fromDataDir(running.dataDir)).code).toBe('SALA_E_ADMIN_UNREACHABLE');
  });

  it('fails with SALA_E_ADMIN_UNREACHABLE when admin.port holds no port', async () => {
    const running = await startTestApi();
    writeFileSync(join(running.dataDir, ADMIN_PORT_FILE), 'seventy\n');
    expect(thrownBy(() => AdminClient.fromDataDir(running.dataDir)).code).toBe('SALA_E_ADMIN_UNREACHABLE');
  });
});
