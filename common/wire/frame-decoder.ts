import { FrameTooLargeError, SalaError } from '../errors.js';

/** Bytes of the big-endian u32 length that precedes every frame body. */
export const FRAME_HEADER_BYTES = 4;

/** Where nextTransient() joins a frame split across chunks (one for the process: JS runs one frame at a time). */
let sharedJoined = Buffer.alloc(0);

type DecoderState = 'header' | 'body';

/**
 * Splits a byte stream into length-prefixed frames.
 *
 * An explicit two-state machine over buffered chunks (as in ws's Receiver): in `header` it waits
 * for four bytes and checks the declared length against the limit *before* waiting for or
 * allocating the body; in `body` it waits until the whole body is buffered. It is pull-based —
 * `push()` only stores, `next()` yields one frame — so a consumer can stop pulling (for an async
 * check or backpressure) and leave the remaining frames in place.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #state: DecoderState = 'header';
  #bodyBytes = 0;
  #maxFrameBytes: number;
  /** Once a frame is refused the stream is out of step: every later call fails the same way. */
  #failure: FrameTooLargeError | undefined;

  constructor(options: { maxFrameBytes: number }) {
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** True when some bytes of an unfinished frame are buffered (an end now would truncate it). */
  get isMidFrame(): boolean {
    return this.#buffered > 0 || this.#state === 'body';
  }

  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /** Changes the limit for frames whose header has not been read yet (handshake → transport). */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.#maxFrameBytes = maxFrameBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next complete frame body, or undefined when more bytes are needed.
   * Throws FrameTooLargeError as soon as an oversized header is buffered.
   */
  next(): Buffer | undefined {
    return this.#next(false);
  }

  /**
   * Like next(), but a frame that spans several chunks is joined in one buffer shared by every
   * decoder in the process, so the frame is valid only until the next nextTransient() call on any
   * decoder: for a caller that is done with it at once (the channel decrypts it into a new buffer
   * before it returns to the event loop). A bulk stream's frames, a little over 64 KiB, nearly always
   * span two socket reads; this saves allocating and collecting one buffer per frame, and costs one
   * buffer of the largest frame seen for the whole process, however many connections there are.
   */
  nextTransient(): Buffer | undefined {
    return this.#next(true);
  }

  #next(isTransient: boolean): Buffer | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state === 'header') {
      if (this.#buffered < FRAME_HEADER_BYTES) return undefined;
      const declared = this.#take(FRAME_HEADER_BYTES).readUInt32BE(0);
      if (declared > this.#maxFrameBytes) {
        this.#failure = new FrameTooLargeError(declared, this.#maxFrameBytes);
        throw this.#failure;
      }
      this.#bodyBytes = declared;
      this.#state = 'body';
    }
    if (this.#buffered < this.#bodyBytes) return undefined;
    const body = this.#take(this.#bodyBytes, isTransient);
    this.#state = 'header';
    return body;
  }

  /** Throws if the stream ended inside a frame. */
  assertClean(): void {
    if (this.isMidFrame) {
      throw new SalaError(
        'SALA_E_FRAME_TRUNCATED',
        `The connection ended in the middle of a frame (${this.#buffered} bytes left unread).`,
      );
    }
  }

  /** Removes `n` buffered bytes; copies only when they span several chunks. */
  #take(n: number, isTransient = false): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    let out: Buffer;
    if (isTransient) {
      if (sharedJoined.length < n) sharedJoined = Buffer.allocUnsafeSlow(n); // its own memory, not a pool slab
      out = sharedJoined.subarray(0, n);
    } else out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) throw new Error('FrameDecoder invariant broken: buffered count is wrong');
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}

/** A frame's wire form: u32 big-endian length, then the body. */
export function encodeFrameHeader(bodyBytes: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(bodyBytes, 0);
  return header;
}

export function encodeFrame(body: Uint8Array): Buffer {
  return Buffer.concat([encodeFrameHeader(body.length), body]);
}
