import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import { MAX_MSGPACK_DEPTH, scanMsgpack } from '../../../../common/wire/msgpack-scan.js';
import { packMessage } from '../../../../common/wire/msgpack.js';

function refused(bytes: number[] | Buffer): SalaError {
  try {
    scanMsgpack(Buffer.from(bytes));
  } catch (err) {
    expect(err).toBeInstanceOf(SalaError);
    expect((err as SalaError).code).toBe('SALA_E_PROTOCOL_MALFORMED');
    return err as SalaError;
  }
  throw new Error('expected the scan to refuse the bytes');
}

describe('scanMsgpack', () => {
  it('accepts every kind of value Sala messages use', () => {
    const value = {
      s: 'text', e: '', long: 'x'.repeat(70_000), n: 1, big: 2 ** 40, neg: -5, f: 1.5, t: true, no: false, nil: null,
      bin: Buffer.alloc(300), arr: [1, 'a', [2, { k: 'v' }]], map: { inner: { deeper: [] } },
    };
    expect(() => scanMsgpack(packMessage(value))).not.toThrow();
  });

  it.each([
    ['the reserved byte 0xc1', [0xc1]],
    ['a fixext 1 (msgpackr undefined)', [0xd4, 0x00, 0x00]],
    ['a timestamp extension', [0xd6, 0xff, 0, 0, 0, 1]],
    ['an ext 8', [0xc7, 1, 0x10, 0]],
    ['a bundled-strings extension pointing backwards', [0xa0, 0xa0, 0xd6, 0x62, 0xff, 0xff, 0xff, 0xfc, 0xc0]],
  ])('refuses %s', (_name, bytes) => {
    refused(bytes);
  });

  it('refuses a map with a non-string key', () => {
    expect(refused([0x81, 0x01, 0x02]).message).toContain('not a string');
  });

  it('refuses a map that repeats a key', () => {
    expect(refused([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]).message).toContain('repeats a key');
  });

  it('allows the same key in two different maps', () => {
    expect(() => scanMsgpack(Buffer.from([0x92, 0x81, 0xa1, 0x61, 0x01, 0x81, 0xa1, 0x61, 0x02]))).not.toThrow();
  });

  it(`refuses nesting deeper than ${MAX_MSGPACK_DEPTH} levels and accepts exactly that many`, () => {
    expect(() => scanMsgpack(Buffer.from([...Array<number>(MAX_MSGPACK_DEPTH).fill(0x91), 0xc0]))).not.toThrow();
    expect(refused([...Array<number>(MAX_MSGPACK_DEPTH + 1).fill(0x91), 0xc0]).message).toContain('nests deeper');
  });

  it('refuses an array that declares more items than there are bytes, without iterating them', () => {
    expect(refused([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]).message).toContain('declared length');
  });

  it('refuses a string or binary longer than the bytes present', () => {
    refused([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]);
    refused([0xc6, 0x00, 0x00, 0x01, 0x00, 0x41]);
  });

  it('refuses a value cut in the middle of a number', () => {
    refused([0xcb, 0, 0, 0]);
  });

  it('refuses bytes after the first value and an empty input', () => {
    expect(refused([0xc0, 0xc0]).message).toContain('exactly one value');
    refused([]);
  });
});
