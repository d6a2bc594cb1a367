import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import {
  MESSAGE_TYPES,
  MAX_PING_DATA_BYTES,
  decodeMessage,
  encodeMessage,
  parseMessage,
  type MessageType,
  type WireMessage,
} from '../../../../common/wire/messages.js';
import { packMessage, unpackUnknown } from '../../../../common/wire/msgpack.js';
import { field, isPlainObject, parseShape } from '../../../../common/wire/schema.js';
import { catchSalaError } from '../../../helpers/errors.js';


// Hand-built MessagePack, for inputs msgpackr's encoder would never produce.
function mpStr(s: string): Buffer {
  const utf8 = Buffer.from(s, 'utf8');
  if (utf8.length > 255) throw new Error('test helper handles str8 at most');
  return utf8.length < 32 ? Buffer.concat([Buffer.from([0xa0 | utf8.length]), utf8]) : Buffer.concat([Buffer.from([0xd9, utf8.length]), utf8]);
}
function mpMap(entries: readonly (readonly [Buffer, Buffer])[]): Buffer {
  if (entries.length > 15) throw new Error('test helper handles fixmap only');
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flat()]);
}
/** `{ type: 'ping', id: <raw> }` with `raw` given as MessagePack bytes. */
function pingWithRawId(raw: Buffer): Buffer {
  return mpMap([
    [mpStr('type'), mpStr('ping')],
    [mpStr('id'), raw],
  ]);
}

/** At least one sample per type; the coverage test below fails when a type is added without one. */
const SAMPLES: Record<MessageType, WireMessage[]> = {
  ping: [
    { type: 'ping', id: 0 },
    { type: 'ping', id: Number.MAX_SAFE_INTEGER, data: Buffer.from([1, 2, 3]) },
    { type: 'ping', id: 7, data: Buffer.alloc(0) },
    { type: 'ping', id: 8, data: Buffer.alloc(MAX_PING_DATA_BYTES, 0xab) },
  ],
  pong: [
    { type: 'pong', id: 1 },
    { type: 'pong', id: 2 ** 32, data: Buffer.from('hello') },
  ],
  error: [
    { type: 'error', code: 'SALA_E_SESSION_LIMIT', message: 'Too many sessions.' },
    { type: 'error', code: 'X', message: '' },
    { type: 'error', code: 'C'.repeat(64), message: 'é'.repeat(512) },
    {
      type: 'error',
      code: 'SALA_E_SESSION_LIMIT',
      message: 'This account already has 3 live sessions.',
      sessions: [{ sessionId: 'abc', address: '10.0.0.2', since: '2026-11-26T00:00:00.000Z' }],
    },
    { type: 'error', code: 'SALA_E_RATE_LIMIT', message: 'Slow down.', retryAfterMs: 1500 },
  ],
  welcome: [
    {
      type: 'welcome',
      user: 'alice',
      sessionId: 's1',
      ticket: { body: Buffer.from([1, 2]), sig: Buffer.alloc(64, 3) },
      serverTimeMs: 1_764_115_200_000,
      graceMs: 60_000,
      renewInMs: 1_800_000,
      directory: [
        { user: 'bob', sessionId: 's2', addresses: [{ host: '10.0.0.3', port: 40_000 }], dhPk: Buffer.alloc(32, 1), sigPk: Buffer.alloc(32, 2), since: 5 },
      ],
      revoked: [{ body: Buffer.from([9]), sig: Buffer.alloc(64, 4) }],
      isResumed: false,
    },
  ],
  registered: [{ type: 'registered', user: 'carol' }],
  'directory.update': [
    { type: 'directory.update', online: [], offline: [{ user: 'bob', sessionId: 's2' }] },
  ],
  ticket: [{ type: 'ticket', ticket: { body: Buffer.from([5]), sig: Buffer.alloc(64) }, serverTimeMs: 1, renewInMs: 2 }],
  revoked: [{ type: 'revoked', revocation: { body: Buffer.from([6]), sig: Buffer.alloc(64) } }],
  'log.ack': [{ type: 'log.ack', ids: ['e1', 'e2'] }],
  announce: [{ type: 'announce', addresses: [{ host: '::1', port: 1 }, { host: '192.168.1.20', port: 65_535 }] }],
  'ticket.renew': [{ type: 'ticket.renew' }],
  'log.batch': [{ type: 'log.batch', events: [{ id: 'e1', at: 1, event: 'link.up', detail: 'peer=bob' }] }],
  logout: [{ type: 'logout' }],
  chat: [
    { type: 'chat', id: 'm1', text: 'hello', at: 1 },
    { type: 'chat', id: 'm2', text: 'é'.repeat(32 * 1024), at: 2 },
  ],
  'chat.ack': [{ type: 'chat.ack', id: 'm1' }],
  'group.state': [
    {
      type: 'group.state',
      group: 'class-3b',
      groupId: Buffer.alloc(16, 1),
      address: '239.192.12.34',
      port: 7422,
      epoch: 3,
      key: Buffer.alloc(32, 2),
      members: [{ senderIdx: 0, user: 'alice', sessionId: 's1', sigPk: Buffer.alloc(32, 3) }],
    },
  ],
  'group.left': [{ type: 'group.left', group: 'class-3b' }],
  'group.join': [{ type: 'group.join', group: 'class-3b' }],
  'group.leave': [{ type: 'group.leave', group: 'class-3b' }],
  'group.datagram': [{ type: 'group.datagram', data: Buffer.alloc(1200, 5) }],
  'file.offer': [{ type: 'file.offer', transferId: 't1', name: 'notes.pdf', size: 1_234_567, sha256: Buffer.alloc(32, 9) }],
  'file.accept': [{ type: 'file.accept', transferId: 't1', offset: 65_536 }],
  'file.decline': [{ type: 'file.decline', transferId: 't1' }],
  'file.credit': [{ type: 'file.credit', transferId: 't1', bytes: 1_048_576 }],
  'file.chunk': [{ type: 'file.chunk', transferId: 't1', offset: 0, data: Buffer.alloc(64 * 1024, 1) }],
  'file.done': [{ type: 'file.done', transferId: 't1' }],
  'file.complete': [{ type: 'file.complete', transferId: 't1' }],
  'file.cancel': [{ type: 'file.cancel', transferId: 't1', code: 'SALA_E_TRANSFER_CANCELLED', message: 'Cancelled by bob.' }],
  'link.ticket': [{ type: 'link.ticket', ticket: { body: Buffer.from([7]), sig: Buffer.alloc(64, 8) } }],
};

/** Buffers are compared as hex so a Buffer/Uint8Array class difference cannot hide a byte difference. */
function normalise(message: WireMessage): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(message).map(([k, v]) => [k, v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v]),
  );
}

describe('encodeMessage / decodeMessage round trip', () => {
  it('has a sample for every message type', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...MESSAGE_TYPES].sort());
  });

  for (const type of MESSAGE_TYPES) {
    it(`round-trips every ${type} sample unchanged`, () => {
      for (const message of SAMPLES[type]) {
        const decoded = decodeMessage(encodeMessage(message));
        expect(normalise(decoded)).toEqual(normalise(message));
      }
    });
  }

  it('decodes binary fields as Uint8Array', () => {
    const decoded = decodeMessage(encodeMessage({ type: 'pong', id: 1, data: Buffer.from([9]) }));
    expect(decoded.type === 'pong' && decoded.data instanceof Uint8Array).toBe(true);
  });

  it('decodes a message that lies inside a larger buffer at an offset', () => {
    const wire = encodeMessage({ type: 'ping', id: 42 });
    const host = Buffer.concat([Buffer.from([0xc1, 0xc1, 0xc1]), wire, Buffer.from([0xc1])]);
    expect(decodeMessage(host.subarray(3, 3 + wire.length))).toEqual({ type: 'ping', id: 42 });
  });

  it('treats an optional field packed as undefined as absent', () => {
    const decoded = decodeMessage(packMessage({ type: 'ping', id: 3, data: undefined }));
    expect(decoded).toEqual({ type: 'ping', id: 3 });
    expect(Object.hasOwn(decoded, 'data')).toBe(false);
  });

  it('accepts keys in any order', () => {
    expect(decodeMessage(packMessage({ id: 5, type: 'pong' }))).toEqual({ type: 'pong', id: 5 });
  });
});

describe('decodeMessage rejects bytes that are not one MessagePack map', () => {
  it('rejects an empty frame with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(new Uint8Array(0)), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects bytes that are not MessagePack with SALA_E_PROTOCOL_MALFORMED', () => {
    // A map that promises two entries and holds half of one.
    catchSalaError(() => decodeMessage(Buffer.from([0x82, 0xa4, 0x74])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a truncated message with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = encodeMessage({ type: 'error', code: 'SALA_E_X', message: 'bye' });
    catchSalaError(() => decodeMessage(wire.subarray(0, wire.length - 1)), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a valid message followed by a trailing byte with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = Buffer.concat([encodeMessage({ type: 'ping', id: 1 }), Buffer.from([0xc0])]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a valid message followed by an incomplete value with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = Buffer.concat([encodeMessage({ type: 'ping', id: 1 }), Buffer.from([0xa5, 0x61])]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects two complete messages in one frame with SALA_E_PROTOCOL_MALFORMED', () => {
    const one = encodeMessage({ type: 'ping', id: 1 });
    catchSalaError(() => decodeMessage(Buffer.concat([one, one])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a top-level array with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(packMessage(['ping', 1])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a top-level string with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(packMessage('ping')), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a top-level nil with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(Buffer.from([0xc0])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a top-level binary with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(packMessage(Buffer.from([1, 2]))), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a top-level timestamp with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(Buffer.from([0xd6, 0xff, 0, 0, 0, 1])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a map with a map as a key with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = mpMap([
      [mpStr('type'), mpStr('ping')],
      [Buffer.from([0x80]), Buffer.from([0x01])],
    ]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects an array32 declaring 2^32-1 items with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a str32 declaring 2^32-1 bytes inside a message with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = Buffer.concat([Buffer.from([0x81]), mpStr('type'), Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff])]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects 100000 nested arrays with SALA_E_PROTOCOL_MALFORMED', () => {
    const wire = Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('still decodes a valid message after a decode that exhausted the stack', () => {
    catchSalaError(
      () => decodeMessage(Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])])),
      'SALA_E_PROTOCOL_MALFORMED',
    );
    expect(decodeMessage(encodeMessage({ type: 'ping', id: 9 }))).toEqual({ type: 'ping', id: 9 });
  });

  it('says why a map that declares more entries than it holds is refused', () => {
    const err = catchSalaError(() => decodeMessage(Buffer.from([0x82])), 'SALA_E_PROTOCOL_MALFORMED');
    expect(err.message).toContain('ends before a declared length');
  });
});

describe('decodeMessage rejects maps that are not a known message', () => {
  it('rejects an unknown type with SALA_E_PROTOCOL_UNKNOWN_TYPE', () => {
    catchSalaError(() => decodeMessage(packMessage({ type: 'hello-from-the-future', id: 1 })), 'SALA_E_PROTOCOL_UNKNOWN_TYPE');
  });

  it('rejects inherited property names used as a type with SALA_E_PROTOCOL_UNKNOWN_TYPE', () => {
    for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      catchSalaError(() => decodeMessage(packMessage({ type })), 'SALA_E_PROTOCOL_UNKNOWN_TYPE');
    }
  });

  it('rejects a type that differs only in case with SALA_E_PROTOCOL_UNKNOWN_TYPE', () => {
    catchSalaError(() => decodeMessage(packMessage({ type: 'PING', id: 1 })), 'SALA_E_PROTOCOL_UNKNOWN_TYPE');
  });

  it('does not echo more than 64 characters of an unknown type', () => {
    const err = catchSalaError(() => decodeMessage(packMessage({ type: 'x'.repeat(10_000) })), 'SALA_E_PROTOCOL_UNKNOWN_TYPE');
    expect(err.message).not.toContain('x'.repeat(65));
  });

  it('rejects a map without a type with SALA_E_PROTOCOL_INVALID_FIELD', () => {
    catchSalaError(() => decodeMessage(packMessage({ id: 1 })), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('rejects a numeric type with SALA_E_PROTOCOL_INVALID_FIELD', () => {
    catchSalaError(() => decodeMessage(packMessage({ type: 1, id: 1 })), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('rejects a binary type with SALA_E_PROTOCOL_INVALID_FIELD', () => {
    catchSalaError(() => decodeMessage(packMessage({ type: Buffer.from('ping'), id: 1 })), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });
});

describe('decodeMessage rejects invalid fields with SALA_E_PROTOCOL_INVALID_FIELD', () => {
  const invalid = (value: unknown): SalaError => catchSalaError(() => decodeMessage(packMessage(value)), 'SALA_E_PROTOCOL_INVALID_FIELD');

  it('rejects a ping without its id', () => {
    const err = invalid({ type: 'ping' });
    expect(err.message).toContain('ping.id');
  });

  it('rejects an error message without its message field', () => {
    invalid({ type: 'error', code: 'SALA_E_X' });
  });

  it('rejects a required field sent as nil', () => {
    invalid({ type: 'ping', id: null });
  });

  it('rejects an optional field sent as nil', () => {
    invalid({ type: 'ping', id: 1, data: null });
  });

  it('rejects a string where an integer is expected', () => {
    invalid({ type: 'ping', id: '1' });
  });

  it('rejects a boolean where an integer is expected', () => {
    invalid({ type: 'ping', id: true });
  });

  it('rejects a string where binary is expected', () => {
    invalid({ type: 'ping', id: 1, data: 'abc' });
  });

  it('rejects an array of numbers where binary is expected', () => {
    invalid({ type: 'ping', id: 1, data: [1, 2, 3] });
  });

  it('rejects binary where a string is expected', () => {
    invalid({ type: 'error', code: Buffer.from('SALA_E_X'), message: 'm' });
  });

  it('rejects a map where a string is expected', () => {
    invalid({ type: 'error', code: { a: 1 }, message: 'm' });
  });

  it('rejects an unknown extra field and names it', () => {
    const err = invalid({ type: 'ping', id: 1, extra: 0 });
    expect(err.message).toContain('ping.extra');
  });

  it('does not echo more than 64 characters of an unknown field name', () => {
    const err = invalid({ type: 'ping', id: 1, ['k'.repeat(5000)]: 0 });
    expect(err.message).not.toContain('k'.repeat(65));
  });

  it('rejects a __proto__ key', () => {
    invalid(JSON.parse('{"type":"ping","id":1,"__proto__":{"polluted":true}}'));
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('rejects an integer map key with SALA_E_PROTOCOL_MALFORMED (keys are strings)', () => {
    const wire = mpMap([
      [mpStr('type'), mpStr('ping')],
      [mpStr('id'), Buffer.from([0x01])],
      [Buffer.from([0x07]), Buffer.from([0x01])],
    ]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a negative integer', () => {
    invalid({ type: 'ping', id: -1 });
  });

  it('rejects a float', () => {
    invalid({ type: 'ping', id: 1.5 });
  });

  it('rejects NaN and Infinity', () => {
    invalid({ type: 'ping', id: Number.NaN });
    invalid({ type: 'ping', id: Number.POSITIVE_INFINITY });
  });

  it('rejects an integer above 2^53-1 sent as uint64', () => {
    const wire = pingWithRawId(Buffer.from([0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]));
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('rejects 2^64-1 sent as uint64', () => {
    const wire = pingWithRawId(Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('rejects a negative int64', () => {
    const wire = pingWithRawId(Buffer.from([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]));
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_INVALID_FIELD');
  });

  it('accepts 2^53-1 sent as uint64', () => {
    const wire = pingWithRawId(Buffer.from([0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(decodeMessage(wire)).toEqual({ type: 'ping', id: Number.MAX_SAFE_INTEGER });
  });

  it('rejects a msgpack timestamp (ext -1): extensions are not part of the protocol', () => {
    catchSalaError(() => decodeMessage(pingWithRawId(Buffer.from([0xd6, 0xff, 0, 0, 0, 1]))), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a 96-bit msgpack timestamp where a number is expected', () => {
    const ts96 = Buffer.from([0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    catchSalaError(() => decodeMessage(pingWithRawId(ts96)), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects an unregistered ext type with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => decodeMessage(pingWithRawId(Buffer.from([0xd4, 0x10, 0x00]))), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a msgpackr BigInt ext (0x42) where a number is expected', () => {
    catchSalaError(() => decodeMessage(pingWithRawId(Buffer.from([0xd4, 0x42, 0x01]))), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects an error code longer than 64 bytes', () => {
    const err = invalid({ type: 'error', code: 'C'.repeat(65), message: '' });
    expect(err.message).toContain('error.code');
  });

  it('counts the string limit in UTF-8 bytes, not characters', () => {
    // 33 characters, 66 bytes.
    invalid({ type: 'error', code: 'é'.repeat(33), message: '' });
  });

  it('rejects an empty error code', () => {
    invalid({ type: 'error', code: '', message: 'm' });
  });

  it('rejects an error message longer than 1024 bytes', () => {
    invalid({ type: 'error', code: 'SALA_E_X', message: 'm'.repeat(1025) });
  });

  it(`rejects ping data longer than ${MAX_PING_DATA_BYTES} bytes`, () => {
    invalid({ type: 'ping', id: 1, data: Buffer.alloc(MAX_PING_DATA_BYTES + 1) });
  });

  it(`rejects pong data longer than ${MAX_PING_DATA_BYTES} bytes`, () => {
    invalid({ type: 'pong', id: 1, data: Buffer.alloc(MAX_PING_DATA_BYTES + 1) });
  });

  // msgpackr alone would decode a repeated key as "last one wins", so two implementations could
  // read one frame as two different messages (here: a pong for one reader, a ping for another).
  it('rejects a map that repeats a key', () => {
    const wire = mpMap([
      [mpStr('type'), mpStr('pong')],
      [mpStr('type'), mpStr('ping')],
      [mpStr('id'), Buffer.from([0x01])],
    ]);
    catchSalaError(() => decodeMessage(wire), 'SALA_E_PROTOCOL_MALFORMED');
  });
});

describe('parseMessage', () => {
  it('rejects a class instance with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => parseMessage(new Date(0)), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects a Map with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => parseMessage(new Map([['type', 'ping']])), 'SALA_E_PROTOCOL_MALFORMED');
  });

  it('accepts a null-prototype object', () => {
    const value = Object.assign(Object.create(null) as Record<string, unknown>, { type: 'ping', id: 4 });
    expect(parseMessage(value)).toEqual({ type: 'ping', id: 4 });
  });

  it('returns a new object rather than the input', () => {
    const value = { type: 'ping', id: 4 };
    expect(parseMessage(value)).not.toBe(value);
  });
});

describe('unpackUnknown', () => {
  it('returns exactly one decoded value', () => {
    expect(unpackUnknown(packMessage({ a: [1, 'b'] }))).toEqual({ a: [1, 'b'] });
  });

  it('rejects two values with SALA_E_PROTOCOL_MALFORMED', () => {
    catchSalaError(() => unpackUnknown(Buffer.from([0x01, 0x02])), 'SALA_E_PROTOCOL_MALFORMED');
  });
});

describe('schema field helpers', () => {
  const invalid = (fn: () => unknown): SalaError => catchSalaError(fn, 'SALA_E_PROTOCOL_INVALID_FIELD');

  it('accepts an array of exactly maxItems items', () => {
    expect(field.array(field.uint(), { maxItems: 3 }).parse([1, 2, 3], 'a')).toEqual([1, 2, 3]);
  });

  it('rejects an array above maxItems', () => {
    const err = invalid(() => field.array(field.uint(), { maxItems: 3 }).parse([1, 2, 3, 4], 'a'));
    expect(err.message).toContain('4 items');
  });

  it('rejects a non-array where an array is expected', () => {
    invalid(() => field.array(field.uint(), { maxItems: 3 }).parse({ 0: 1, length: 1 }, 'a'));
  });

  it('names the index of a bad array item', () => {
    const err = invalid(() => field.array(field.uint(), { maxItems: 3 }).parse([1, 'x'], 'list'));
    expect(err.message).toContain('list[1]');
  });

  it('accepts every oneOf value', () => {
    const kind = field.oneOf('text', 'file');
    expect(kind.parse('text', 'k')).toBe('text');
    expect(kind.parse('file', 'k')).toBe('file');
  });

  it('rejects a string outside oneOf', () => {
    invalid(() => field.oneOf('text', 'file').parse('image', 'k'));
  });

  it('rejects a non-string for oneOf', () => {
    invalid(() => field.oneOf('1', '2').parse(1, 'k'));
  });

  it('returns undefined for an absent optional field', () => {
    expect(field.optional(field.uint()).parse(undefined, 'o')).toBeUndefined();
  });

  it('validates a present optional field with its inner field', () => {
    expect(field.optional(field.uint()).parse(3, 'o')).toBe(3);
    invalid(() => field.optional(field.uint()).parse(-3, 'o'));
  });

  it('parses a nested object', () => {
    const shape = { inner: field.object({ name: field.string({ maxBytes: 8 }), on: field.boolean() }) };
    expect(parseShape(shape, { inner: { name: 'a', on: true } }, 'outer')).toEqual({ inner: { name: 'a', on: true } });
  });

  it('names the full path of a bad nested field', () => {
    const shape = { inner: field.object({ name: field.string({ maxBytes: 8 }) }) };
    const err = invalid(() => parseShape(shape, { inner: { name: 5 } }, 'outer'));
    expect(err.message).toContain('outer.inner.name');
  });

  it('rejects an unknown key in a nested object', () => {
    const shape = { inner: field.object({ name: field.string({ maxBytes: 8 }) }) };
    invalid(() => parseShape(shape, { inner: { name: 'a', extra: 1 } }, 'outer'));
  });

  it('rejects an array where a nested object is expected', () => {
    invalid(() => field.object({}).parse([], 'o'));
  });

  it('rejects a missing required key but not a missing optional one', () => {
    const shape = { a: field.uint(), b: field.optional(field.uint()) };
    expect(parseShape(shape, { a: 1 }, 's')).toEqual({ a: 1 });
    invalid(() => parseShape(shape, { b: 1 }, 's'));
  });

  it('rejects a string shorter than minBytes', () => {
    invalid(() => field.string({ maxBytes: 8, minBytes: 2 }).parse('a', 's'));
  });

  it('rejects an integer above max', () => {
    expect(field.uint({ max: 10 }).parse(10, 'n')).toBe(10);
    invalid(() => field.uint({ max: 10 }).parse(11, 'n'));
  });

  it('rejects a non-boolean for boolean', () => {
    invalid(() => field.boolean().parse(0, 'b'));
  });

  it('rejects binary of the wrong exact length', () => {
    expect(field.bytes({ maxBytes: 32, exactBytes: 32 }).parse(new Uint8Array(32), 'k')).toHaveLength(32);
    invalid(() => field.bytes({ maxBytes: 32, exactBytes: 32 }).parse(new Uint8Array(31), 'k'));
  });

  it('treats only plain and null-prototype objects as maps', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject(new Date())).toBe(false);
    expect(isPlainObject(Buffer.alloc(1))).toBe(false);
  });
});
