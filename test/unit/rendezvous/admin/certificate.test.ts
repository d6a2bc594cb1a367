import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  ADMIN_CERT_FILE,
  ADMIN_KEY_FILE,
  createSelfSignedCertificate,
  loadOrCreateAdminTls,
  type AdminTls,
} from '../../../../rendezvous/admin/certificate.js';
import { tempDataDir } from './helpers.js';

const isPosix = process.platform !== 'win32';
const HOUR_MS = 60 * 60 * 1000;

/** GET / over real TLS, trusting only `ca`; resolves with the body. */
async function fetchOver(tls: AdminTls, host: string, servername?: string): Promise<string> {
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => res.end('hello'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return new Promise<string>((resolve, reject) => {
    const req = get(
      { host, port, path: '/', ca: tls.certPem, agent: false, ...(servername === undefined ? {} : { servername, lookup: undefined }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
  });
}

describe('self-signed admin certificate', () => {
  const tls = createSelfSignedCertificate();
  const cert = new X509Certificate(tls.certPem);

  it('names sala-rendezvous as both subject and issuer', () => {
    expect(cert.subject).toBe('CN=sala-rendezvous');
    expect(cert.issuer).toBe('CN=sala-rendezvous');
  });

  it('verifies with its own public key (self-signed with ecdsa-with-SHA256)', () => {
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('is valid for IP 127.0.0.1 and DNS localhost, and nothing else', () => {
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('192.168.1.1')).toBeUndefined();
    expect(cert.checkHost('example.com')).toBeUndefined();
  });

  it('is an end-entity certificate for TLS server authentication only', () => {
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('is valid from an hour ago for ten years', () => {
    const now = Date.now();
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(from).toBeLessThanOrEqual(now - HOUR_MS + 5_000);
    expect(from).toBeGreaterThan(now - HOUR_MS - 60_000);
    expect(new Date(to).getUTCFullYear()).toBe(new Date(from).getUTCFullYear() + 10);
  });

  it('has a random positive 16-byte serial number', () => {
    const other = new X509Certificate(createSelfSignedCertificate().certPem);
    expect(cert.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(other.serialNumber).not.toBe(cert.serialNumber);
  });

  it('comes with the matching PKCS#8 private key', () => {
    expect(tls.keyPem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(tls.keyPem))).toBe(true);
    expect(tls.fingerprint256).toBe(cert.fingerprint256);
  });

  it('encodes a not-after date past 2049 as GeneralizedTime that parses back', () => {
    const late = new X509Certificate(createSelfSignedCertificate({ now: new Date('2045-06-01T12:00:00Z') }).certPem);
    expect(new Date(late.validTo).toISOString()).toBe('2055-06-01T11:00:00.000Z');
  });

  it('serves HTTPS on 127.0.0.1 to a client that trusts only this certificate', async () => {
    expect(await fetchOver(tls, '127.0.0.1')).toBe('hello');
  });

  it('serves HTTPS to a client that checks the name localhost', async () => {
    expect(await fetchOver(tls, '127.0.0.1', 'localhost')).toBe('hello');
  });
});

describe('loadOrCreateAdminTls', () => {
  it('writes admin-cert.pem and an owner-only admin-key.pem on first start', () => {
    const dir = tempDataDir();
    const tls = loadOrCreateAdminTls(dir);
    expect(readFileSync(join(dir, ADMIN_CERT_FILE), 'utf8')).toBe(tls.certPem);
    expect(readFileSync(join(dir, ADMIN_KEY_FILE), 'utf8')).toBe(tls.keyPem);
    if (isPosix) expect(statSync(join(dir, ADMIN_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it('reuses the same certificate and key on the next start', () => {
    const dir = tempDataDir();
    const first = loadOrCreateAdminTls(dir);
    const second = loadOrCreateAdminTls(dir);
    expect(second).toEqual(first);
  });

  it('replaces a certificate file that is not a certificate', () => {
    const dir = tempDataDir();
    const first = loadOrCreateAdminTls(dir);
    writeFileSync(join(dir, ADMIN_CERT_FILE), 'garbage');
    const second = loadOrCreateAdminTls(dir);
    expect(second.fingerprint256).not.toBe(first.fingerprint256);
    expect(new X509Certificate(readFileSync(join(dir, ADMIN_CERT_FILE))).fingerprint256).toBe(second.fingerprint256);
  });

  it('replaces a certificate whose key file belongs to another certificate', () => {
    const dir = tempDataDir();
    const first = loadOrCreateAdminTls(dir);
    writeFileSync(join(dir, ADMIN_KEY_FILE), createSelfSignedCertificate().keyPem);
    expect(loadOrCreateAdminTls(dir).fingerprint256).not.toBe(first.fingerprint256);
  });

  it('replaces an expired certificate', () => {
    const dir = tempDataDir();
    const first = loadOrCreateAdminTls(dir);
    const elevenYearsOn = new Date(Date.now() + 11 * 365 * 24 * HOUR_MS);
    expect(loadOrCreateAdminTls(dir, { now: elevenYearsOn }).fingerprint256).not.toBe(first.fingerprint256);
  });
});
