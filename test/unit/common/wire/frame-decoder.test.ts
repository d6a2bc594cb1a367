import { describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../../common/errors.js';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  encodeFrame,
  encodeFrameHeader,
} from '../../../../common/wire/frame-decoder.js';
import { catchSalaError } from '../../../helpers/errors.js';

/** Hex strings compare far faster than element-wise Buffer equality for large bodies. */
const hex = (frames: readonly Uint8Array[]): string[] => frames.map((f) => Buffer.from(f).toString('hex'));

/** Pulls every complete frame the decoder holds. */
function drain(decoder: FrameDecoder): Buffer[] {
  const frames: Buffer[] = [];
  for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(frame);
  return frames;
}

function bytes(length: number, seed = 1): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
}

function header(declaredBytes: number): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES);
  out.writeUInt32BE(declaredBytes, 0);
  return out;
}

const BODIES = [bytes(5, 1), bytes(0), bytes(300, 7), bytes(1, 9)];
const STREAM = Buffer.concat(BODIES.map((body) => encodeFrame(body)));

describe('FrameDecoder', () => {
  it('decodes a single frame pushed in one chunk', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(encodeFrame(bytes(10)));
    expect(decoder.next()).toEqual(bytes(10));
    expect(decoder.next()).toBeUndefined();
  });

  it('decodes several frames packed in one chunk, one per next() call', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(STREAM);
    expect(drain(decoder)).toEqual(BODIES);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decodes the same frames when the stream is fed byte by byte', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const frames: Buffer[] = [];
    for (const byte of STREAM) {
      decoder.push(Buffer.from([byte]));
      frames.push(...drain(decoder));
    }
    expect(frames).toEqual(BODIES);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('reassembles frames split across two chunks at every possible split point', () => {
    for (let split = 0; split <= STREAM.length; split += 1) {
      const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
      const frames: Buffer[] = [];
      decoder.push(STREAM.subarray(0, split));
      frames.push(...drain(decoder));
      decoder.push(STREAM.subarray(split));
      frames.push(...drain(decoder));
      expect(hex(frames)).toEqual(hex(BODIES));
    }
  });

  it('reassembles a body that spans many small chunks', () => {
    const body = bytes(1000, 3);
    const wire = encodeFrame(body);
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const frames: Buffer[] = [];
    for (let offset = 0; offset < wire.length; offset += 7) {
      decoder.push(wire.subarray(offset, offset + 7));
      frames.push(...drain(decoder));
    }
    expect(frames).toEqual([body]);
  });

  it('returns undefined until the whole body is buffered', () => {
    const wire = encodeFrame(bytes(8));
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(wire.subarray(0, wire.length - 1));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.next()).toBeUndefined();
    decoder.push(wire.subarray(wire.length - 1));
    expect(decoder.next()).toEqual(bytes(8));
  });

  it('leaves frames it has not been asked for in the buffer', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(Buffer.concat([encodeFrame(bytes(3)), encodeFrame(bytes(6))]));
    expect(decoder.next()).toEqual(bytes(3));
    expect(decoder.bufferedBytes).toBe(FRAME_HEADER_BYTES + 6);
    expect(decoder.next()).toEqual(bytes(6));
  });

  it('yields an empty body for a zero-length frame', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(header(0));
    const frame = decoder.next();
    expect(frame).toBeInstanceOf(Buffer);
    expect(frame?.length).toBe(0);
    expect(decoder.bufferedBytes).toBe(0);
    expect(() => decoder.assertClean()).not.toThrow();
  });

  it('yields a zero-length frame even when maxFrameBytes is 0', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 0 });
    decoder.push(Buffer.concat([header(0), header(0)]));
    expect(drain(decoder)).toEqual([Buffer.alloc(0), Buffer.alloc(0)]);
  });

  it('ignores empty chunks', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(Buffer.alloc(0));
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.next()).toBeUndefined();
    expect(() => decoder.assertClean()).not.toThrow();
  });

  it('accepts a frame whose declared length equals maxFrameBytes', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 16 });
    decoder.push(encodeFrame(bytes(16)));
    expect(decoder.next()).toEqual(bytes(16));
  });

  it('rejects a frame whose declared length exceeds maxFrameBytes by one', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 16 });
    decoder.push(encodeFrame(bytes(17)));
    const err = catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
    expect(err).toBeInstanceOf(FrameTooLargeError);
  });

  it('rejects an oversized declared length as soon as the 4 header bytes are buffered, before any body byte', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(header(1025));
    const err = catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
    expect(err).toBeInstanceOf(FrameTooLargeError);
    expect(err.message).toContain('1025');
    expect(err.message).toContain('1024');
  });

  it('rejects an oversized header fed byte by byte on exactly the fourth byte', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const wire = header(5000);
    for (let i = 0; i < FRAME_HEADER_BYTES - 1; i += 1) {
      decoder.push(wire.subarray(i, i + 1));
      expect(decoder.next()).toBeUndefined();
    }
    decoder.push(wire.subarray(FRAME_HEADER_BYTES - 1));
    catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
  });

  it('rejects the largest declarable length, 2^32-1', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 128 * 1024 });
    decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    const err = catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
    expect(err.message).toContain(String(2 ** 32 - 1));
  });

  it('rejects an oversized header that arrives packed behind a valid frame', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 64 });
    decoder.push(Buffer.concat([encodeFrame(bytes(4)), header(65)]));
    expect(decoder.next()).toEqual(bytes(4));
    catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
  });

  it('never holds more bytes than were pushed and not yet returned', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    let pushed = 0;
    let consumed = 0;
    for (let offset = 0; offset < STREAM.length; offset += 13) {
      const chunk = STREAM.subarray(offset, offset + 13);
      decoder.push(chunk);
      pushed += chunk.length;
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(pushed - consumed);
      for (const frame of drain(decoder)) consumed += FRAME_HEADER_BYTES + frame.length;
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(pushed - consumed + FRAME_HEADER_BYTES);
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(pushed);
    }
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('passes assertClean at a frame boundary', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(STREAM);
    drain(decoder);
    expect(() => decoder.assertClean()).not.toThrow();
  });

  it('fails assertClean with SALA_E_FRAME_TRUNCATED when the stream ends inside a header', () => {
    for (let headerBytes = 1; headerBytes < FRAME_HEADER_BYTES; headerBytes += 1) {
      const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
      decoder.push(header(8).subarray(0, headerBytes));
      expect(decoder.next()).toBeUndefined();
      catchSalaError(() => decoder.assertClean(), 'SALA_E_FRAME_TRUNCATED');
    }
  });

  it('fails assertClean with SALA_E_FRAME_TRUNCATED when the stream ends inside a body', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(encodeFrame(bytes(8)).subarray(0, FRAME_HEADER_BYTES + 3));
    expect(decoder.next()).toBeUndefined();
    catchSalaError(() => decoder.assertClean(), 'SALA_E_FRAME_TRUNCATED');
  });

  it('fails assertClean with SALA_E_FRAME_TRUNCATED when a header was read but no body byte arrived', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(header(8));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(0);
    catchSalaError(() => decoder.assertClean(), 'SALA_E_FRAME_TRUNCATED');
  });

  it('fails assertClean with SALA_E_FRAME_TRUNCATED when the last frame of a packed chunk is cut short', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(STREAM.subarray(0, STREAM.length - 1));
    expect(drain(decoder)).toEqual(BODIES.slice(0, -1));
    catchSalaError(() => decoder.assertClean(), 'SALA_E_FRAME_TRUNCATED');
  });

  // isMidFrame means "an end now would truncate a frame", which is also true once the header of an
  // unfinished frame has been consumed and no body byte has arrived (SecureChannel's truncation message).
  it('reports isMidFrame after a header whose body has not arrived yet', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(header(8));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.isMidFrame).toBe(true);
  });

  it('reports isMidFrame while part of a frame is buffered', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    decoder.push(header(8).subarray(0, 2));
    expect(decoder.isMidFrame).toBe(true);
  });

  it('exposes the limit it was constructed with', () => {
    expect(new FrameDecoder({ maxFrameBytes: 4096 }).maxFrameBytes).toBe(4096);
  });

  it('applies a raised limit from setMaxFrameBytes to the next header', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 16 });
    decoder.setMaxFrameBytes(64);
    expect(decoder.maxFrameBytes).toBe(64);
    decoder.push(encodeFrame(bytes(64)));
    expect(decoder.next()).toEqual(bytes(64));
  });

  it('applies a lowered limit from setMaxFrameBytes to the next header', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 64 });
    decoder.push(encodeFrame(bytes(32)));
    expect(decoder.next()).toEqual(bytes(32));
    decoder.setMaxFrameBytes(16);
    decoder.push(encodeFrame(bytes(32)));
    catchSalaError(() => decoder.next(), 'SALA_E_FRAME_TOO_LARGE');
  });

  it('keeps the limit that applied when a header was read for the rest of that frame', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 64 });
    const wire = encodeFrame(bytes(32));
    decoder.push(wire.subarray(0, FRAME_HEADER_BYTES + 1));
    expect(decoder.next()).toBeUndefined();
    decoder.setMaxFrameBytes(16);
    decoder.push(wire.subarray(FRAME_HEADER_BYTES + 1));
    expect(decoder.next()).toEqual(bytes(32));
  });
});

describe('encodeFrame', () => {
  it('writes a big-endian u32 length followed by the body', () => {
    const wire = encodeFrame(Buffer.from([0xaa, 0xbb, 0xcc]));
    expect(wire).toEqual(Buffer.from([0x00, 0x00, 0x00, 0x03, 0xaa, 0xbb, 0xcc]));
  });

  it('writes a header of four bytes in network byte order', () => {
    expect(encodeFrameHeader(0x01020304)).toEqual(Buffer.from([0x01, 0x02, 0x03, 0x04]));
    expect(FRAME_HEADER_BYTES).toBe(4);
  });

  it('encodes an empty body as a bare zero header', () => {
    expect(encodeFrame(new Uint8Array(0))).toEqual(Buffer.alloc(4));
  });

  it('round-trips bodies of many sizes through FrameDecoder', () => {
    const sizes = [0, 1, 2, 3, 4, 5, 127, 128, 255, 256, 1000, 65_535, 65_536, 100_000];
    const bodies = sizes.map((size, i) => bytes(size, i));
    const decoder = new FrameDecoder({ maxFrameBytes: 100_000 });
    decoder.push(Buffer.concat(bodies.map((body) => encodeFrame(body))));
    expect(hex(drain(decoder))).toEqual(hex(bodies));
    expect(() => decoder.assertClean()).not.toThrow();
  });

  it('accepts a plain Uint8Array body', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 16 });
    decoder.push(encodeFrame(new Uint8Array([1, 2, 3])));
    expect(decoder.next()).toEqual(Buffer.from([1, 2, 3]));
  });
});

describe('FrameDecoder.nextTransient', () => {
  /** Every frame as nextTransient() gives it, copied at once (the joined ones are only valid until the next call). */
  function drainTransient(decoder: FrameDecoder): string[] {
    const frames: string[] = [];
    for (let frame = decoder.nextTransient(); frame !== undefined; frame = decoder.nextTransient()) frames.push(frame.toString('hex'));
    return frames;
  }

  it('yields the frames next() yields, at every split point and byte by byte', () => {
    for (let split = 0; split <= STREAM.length; split += 1) {
      const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
      decoder.push(STREAM.subarray(0, split));
      const frames = drainTransient(decoder);
      decoder.push(STREAM.subarray(split));
      frames.push(...drainTransient(decoder));
      expect(frames).toEqual(hex(BODIES));
    }
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const frames: string[] = [];
    for (const byte of STREAM) {
      decoder.push(Buffer.from([byte]));
      frames.push(...drainTransient(decoder));
    }
    expect(frames).toEqual(hex(BODIES));
  });

  it('joins split frames in one buffer shared by all decoders, grown to the largest frame', () => {
    const a = new FrameDecoder({ maxFrameBytes: 4096 });
    const b = new FrameDecoder({ maxFrameBytes: 4096 });
    const split = (decoder: FrameDecoder, body: Buffer): Buffer | undefined => {
      const frame = encodeFrame(body);
      decoder.push(frame.subarray(0, 10));
      decoder.push(frame.subarray(10));
      return decoder.nextTransient();
    };
    const first = split(a, bytes(3000, 3));
    expect(first?.equals(bytes(3000, 3))).toBe(true);
    const second = split(b, bytes(2000, 5));
    expect(second?.equals(bytes(2000, 5))).toBe(true);
    expect(second?.buffer).toBe(first?.buffer);
    expect(split(a, bytes(3500, 7))?.equals(bytes(3500, 7))).toBe(true);
  });

  it('returns a frame that lies within one chunk as a view of that chunk, never the shared buffer', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const chunk = encodeFrame(bytes(100));
    decoder.push(chunk);
    expect(decoder.nextTransient()?.buffer).toBe(chunk.buffer);
  });
});
