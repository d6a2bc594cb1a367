import { describe, expect, it } from 'vitest';
import { bitString, explicitTag, implicitPrimitive, oid, sequence, smallInteger, tlv, toPem, unsignedInteger, x509Time } from '../../../../rendezvous/admin/der.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('DER writer', () => {
  it('encodes ecdsa-with-SHA256 as the OID bytes of RFC 5758', () => {
    expect(hex(oid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
  });

  it('encodes a short length in one byte and a long one as 0x80|n plus n bytes', () => {
    expect(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4)).toBe('047f');
    expect(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6)).toBe('048180');
    expect(hex(tlv(0x04, Buffer.alloc(300))).slice(0, 8)).toBe('0482012c');
  });

  it('pads an integer whose top bit is set and trims leading zeros', () => {
    expect(hex(unsignedInteger(Buffer.from([0x80])))).toBe('02020080');
    expect(hex(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])))).toBe('02017f');
    expect(hex(smallInteger(0))).toBe('020100');
    expect(hex(smallInteger(2))).toBe('020102');
  });

  it('uses UTCTime before 2050 and GeneralizedTime from 2050 on (RFC 5280 4.1.2.5)', () => {
    expect(Buffer.from(x509Time(new Date('2049-12-31T23:59:59Z'))).toString('latin1')).toBe('\x17\x0d491231235959Z');
    expect(Buffer.from(x509Time(new Date('2050-01-01T00:00:00Z'))).toString('latin1')).toBe('\x18\x0f20500101000000Z');
  });

  it('writes context tags: explicit constructed and implicit primitive', () => {
    expect(hex(explicitTag(0, smallInteger(2)))).toBe('a003020102');
    expect(hex(implicitPrimitive(7, Buffer.from([127, 0, 0, 1])))).toBe('87047f000001');
  });

  it('writes the unused-bit count before a BIT STRING', () => {
    expect(hex(bitString(Buffer.from([0x80]), 7))).toBe('03020780');
    expect(() => bitString(Buffer.from([0x80]), 8)).toThrow(RangeError);
  });

  it('wraps an empty SEQUENCE and PEM lines at 64 characters', () => {
    expect(hex(sequence())).toBe('3000');
    const pem = toPem('CERTIFICATE', Buffer.alloc(100, 1));
    const body = pem.split('\n').slice(1, -2);
    expect(body.every((line) => line.length <= 64)).toBe(true);
    expect(pem.startsWith('-----BEGIN CERTIFICATE-----\n')).toBe(true);
    expect(pem.endsWith('-----END CERTIFICATE-----\n')).toBe(true);
  });

  it('refuses an OID whose second arc is out of range', () => {
    expect(() => oid('1.40.1')).toThrow(RangeError);
  });
});
