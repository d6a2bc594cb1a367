import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { ensurePrivateDir } from '../../common/index.js';
import {
  bitString,
  boolean,
  explicitTag,
  implicitPrimitive,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  toPem,
  unsignedInteger,
  utf8String,
  x509Time,
} from './der.js';
import { readTextIfExists, tightenToOwnerOnly, writePrivateFile } from '../../common/private-files.js';

/** File names in the server's data dir (CONTRACT.md names the certificate). */
export const ADMIN_CERT_FILE = 'admin-cert.pem';
export const ADMIN_KEY_FILE = 'admin-key.pem';

export const ADMIN_CERT_COMMON_NAME = 'sala-rendezvous';
const VALIDITY_YEARS = 10;
/** notBefore is backdated so a client whose clock runs a little behind still accepts the certificate. */
const BACKDATE_MS = 60 * 60 * 1000;

const OID = Object.freeze({
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
});

export interface AdminTls {
  /** PEM certificate (what admin commands pin). */
  readonly certPem: string;
  /** PKCS#8 PEM private key. */
  readonly keyPem: string;
  /** SHA-256 fingerprint as node:crypto prints it (`AB:CD:…`). */
  readonly fingerprint256: string;
}

export interface CertificateOptions {
  /** Defaults to the current time; tests pass a fixed one. */
  now?: Date;
  /** A P-256 key to certify instead of a fresh one (tests: a re-issued certificate for the same key). */
  privateKey?: KeyObject;
}

/**
 * A self-signed certificate for the loopback admin API: ECDSA P-256, CN=sala-rendezvous as both
 * subject and issuer, valid from an hour ago for ten years, for IP 127.0.0.1 and DNS localhost,
 * an end-entity (CA:false) usable only for TLS server authentication. The TBSCertificate is
 * encoded here in DER (der.ts) and signed with node:crypto, so no OpenSSL binary is needed.
 */
export function createSelfSignedCertificate(options: CertificateOptions = {}): AdminTls {
  const now = options.now ?? new Date();
  const { privateKey, publicKey } =
    options.privateKey === undefined
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : { privateKey: options.privateKey, publicKey: createPublicKey(options.privateKey) };
  // SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, uncompressed point) exactly as node:crypto encodes it.
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const signatureAlgorithm = sequence(oid(OID.ecdsaWithSha256)); // RFC 5758 §3.2: parameters absent
  const name = sequence(set(sequence(oid(OID.commonName), utf8String(ADMIN_CERT_COMMON_NAME))));
  const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  const notAfter = new Date(notBefore.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);

  const tbs = sequence(
    explicitTag(0, smallInteger(2)), // version v3
    unsignedInteger(randomSerial()),
    signatureAlgorithm,
    name, // issuer
    sequence(x509Time(notBefore), x509Time(notAfter)),
    name, // subject
    spki,
    explicitTag(3, sequence(...extensions())),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const certificate = sequence(tbs, signatureAlgorithm, bitString(signature));
  const certPem = toPem('CERTIFICATE', certificate);
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    fingerprint256: new X509Certificate(certPem).fingerprint256,
  };
}

/**
 * 16 random bytes, positive and exactly 16 bytes long in DER: the top bit is cleared (so no 0x00 pad
 * is needed) and a zero first byte is avoided (so nothing is trimmed). RFC 5280 allows up to 20.
 */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f || 0x01;
  return serial;
}

function extension(id: string, isCritical: boolean, value: Uint8Array): Buffer {
  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }; DER omits a FALSE default.
  return isCritical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function extensions(): Buffer[] {
  const subjectAltName = sequence(
    implicitPrimitive(7, Buffer.from([127, 0, 0, 1])), // iPAddress
    implicitPrimitive(2, Buffer.from('localhost', 'ascii')), // dNSName (IA5String)
  );
  // cA DEFAULT FALSE and no pathLen: the DER of "CA:false" is an empty SEQUENCE.
  const basicConstraints = sequence();
  // KeyUsage is a named BIT STRING; digitalSignature is bit 0, and DER drops trailing zero bits: 1 byte, 7 unused.
  const keyUsage = bitString(Buffer.from([0x80]), 7);
  const extKeyUsage = sequence(oid(OID.serverAuth));
  return [
    extension(OID.subjectAltName, false, subjectAltName),
    extension(OID.basicConstraints, true, basicConstraints),
    extension(OID.keyUsage, true, keyUsage),
    extension(OID.extKeyUsage, false, extKeyUsage),
  ];
}

/**
 * The admin API's certificate and key: read from the data dir, or made on first start. A pair that
 * is missing, unparseable, mismatched or expired is replaced — unlike the server's identity key
 * nothing outside this data dir has pinned it (admin commands re-read admin-cert.pem each time).
 */
export function loadOrCreateAdminTls(dataDir: string, options: CertificateOptions = {}): AdminTls {
  ensurePrivateDir(dataDir);
  const certPath = join(dataDir, ADMIN_CERT_FILE);
  const keyPath = join(dataDir, ADMIN_KEY_FILE);
  const existing = readUsablePair(readTextIfExists(certPath), readTextIfExists(keyPath), options.now ?? new Date());
  if (existing !== undefined) {
    tightenToOwnerOnly(keyPath);
    return existing;
  }
  const created = createSelfSignedCertificate(options);
  // Key first: a reader that finds the new certificate can rely on its key being in place.
  writePrivateFile(keyPath, created.keyPem);
  writePrivateFile(certPath, created.certPem);
  return created;
}

function readUsablePair(certPem: string | undefined, keyPem: string | undefined, now: Date): AdminTls | undefined {
  if (certPem === undefined || keyPem === undefined) return undefined;
  let certificate: X509Certificate;
  let key: KeyObject;
  try {
    certificate = new X509Certificate(certPem);
    key = createPrivateKey(keyPem);
  } catch {
    return undefined;
  }
  if (!certificate.checkPrivateKey(key)) return undefined;
  if (new Date(certificate.validTo).getTime() <= now.getTime()) return undefined;
  return { certPem, keyPem, fingerprint256: certificate.fingerprint256 };
}
