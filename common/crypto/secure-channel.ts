import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { SalaError, toSalaError } from '../errors.js';
import { FrameDecoder, FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';
import { AEAD_TAG_BYTES } from './aead.js';
import type { CipherState } from './noise/cipher-state.js';

const EMPTY = new Uint8Array(0);

/**
 * The first plaintext byte of every transport frame. CLOSE is an authenticated end-of-stream: a
 * connection that ends without it was cut, and the reader is told so instead of seeing a clean end
 * (truncation fails closed).
 */
const enum FrameKind {
  Data = 0,
  Close = 1,
}
const KIND_BYTES = 1;
const DATA_KIND = Uint8Array.of(FrameKind.Data);
const CLOSE_KIND = Uint8Array.of(FrameKind.Close);
/** Frame pieces below this size are joined into one socket write (see #writePieces). */
const JOIN_BELOW_BYTES = 1024;

export interface SecureChannelInit {
  socket: Socket;
  decoder: FrameDecoder;
  send: CipherState;
  receive: CipherState;
  remoteStatic: Uint8Array;
  remotePayload: Buffer;
  handshakeHash: Uint8Array;
  maxFrameBytes: number;
  rekeyIntervalFrames: number;
}

/**
 * An encrypted, authenticated message stream over one TCP socket, made by `secureHandshake`.
 *
 * It is a Duplex in object mode: each write is one message of at most `maxPayloadBytes` (a Buffer, or
 * an array of Buffers that together form the message: an envelope and a large payload are then
 * encrypted straight from where they are, and must not change until the write's callback), each
 * `data` event one received message, in order and exactly once. Every frame is sealed with
 * the direction's CipherState and a counter nonce, so a flipped bit, a replayed, reordered or dropped
 * frame fails authentication and destroys the channel with SALA_E_CHANNEL_DECRYPT_FAILED. Backpressure
 * runs both ways: writes report the socket's, and a reader that stops consuming pauses the socket.
 */
export class SecureChannel extends Duplex {
  readonly remoteStatic: Uint8Array;
  /** The other side's handshake payload (already checked by the handshake's `verifyRemote`). */
  readonly remotePayload: Buffer;
  /** Identifies this session on both ends (Noise §11.2); used for channel binding. */
  readonly handshakeHash: Uint8Array;
  readonly maxPayloadBytes: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;

  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #rekeyIntervalFrames: number;
  /** Bytes the socket may hold before writes wait for its 'drain': four of the largest frames. */
  readonly #socketBufferLimit: number;
  #framesSent = 0;
  #framesReceived = 0;
  #isReadPaused = false;
  #hasRemoteClosed = false;
  /** TCP FIN seen; judged once the frames still in the decoder have been delivered. */
  #hasSocketEnded = false;
  #pendingWriteCallback: ((err?: Error | null) => void) | undefined;

  constructor(init: SecureChannelInit) {
    super({ readableObjectMode: true, writableObjectMode: true, allowHalfOpen: false });
    this.#socket = init.socket;
    this.#decoder = init.decoder;
    this.#send = init.send;
    this.#receive = init.receive;
    this.#rekeyIntervalFrames = init.rekeyIntervalFrames;
    this.remoteStatic = init.remoteStatic;
    this.remotePayload = init.remotePayload;
    this.handshakeHash = init.handshakeHash;
    this.maxPayloadBytes = init.maxFrameBytes - AEAD_TAG_BYTES - KIND_BYTES;
    this.#socketBufferLimit = 4 * init.maxFrameBytes;
    this.remoteAddress = init.socket.remoteAddress;
    this.remotePort = init.socket.remotePort;
    this.#decoder.setMaxFrameBytes(init.maxFrameBytes);

    // The channel ends the socket itself, after its CLOSE frame. A socket that ended itself on the
    // peer's FIN (allowHalfOpen false) would send FIN before our CLOSE, and the peer would read that
    // as truncation whenever our reader is slower than the FIN.
    this.#socket.allowHalfOpen = true;
    this.#socket.on('data', this.#onData);
    this.#socket.on('end', this.#onEnd);
    this.#socket.on('error', this.#onSocketError);
    this.#socket.on('close', this.#onSocketClose);
    this.#socket.on('drain', this.#onDrain);
    // Frames that arrived packed behind the last handshake message are already buffered.
    queueMicrotask(() => {
      if (!this.destroyed) {
        this.#pump();
        this.#socket.resume();
      }
    });
  }

  /** Sets TCP keep-alive on the underlying socket (dead-peer detection for idle links). */
  setKeepAlive(enable: boolean, initialDelayMs: number): this {
    this.#socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  /**
   * Lets the writer go on while the socket holds less than a few frames. Waiting for the socket's
   * own 'drain' after every frame (its high-water mark is 16 KiB, below one bulk frame) would leave
   * the next frame's encryption waiting for the kernel instead of overlapping with it.
   */
  #afterSocketWrite(callback: (err?: Error | null) => void): void {
    if (this.#socket.writableLength <= this.#socketBufferLimit) callback();
    else this.#pendingWriteCallback = callback;
  }

  override _writev(chunks: { chunk: unknown }[], callback: (err?: Error | null) => void): void {
    const pieces: Buffer[] = [];
    try {
      for (const { chunk } of chunks) this.#seal(FrameKind.Data, toParts(chunk), pieces);
    } catch (err) {
      callback(toSalaError(err, 'SALA_E_CHANNEL_CLOSED', 'The message could not be sent.'));
      return;
    }
    this.#writePieces(pieces);
    this.#afterSocketWrite(callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    const pieces: Buffer[] = [];
    try {
      this.#seal(FrameKind.Close, [], pieces);
    } catch (err) {
      callback(toSalaError(err, 'SALA_E_CHANNEL_CLOSED', 'The channel could not be closed cleanly.'));
      return;
    }
    this.#writePieces(pieces);
    this.#socket.end(() => callback());
  }

  override _read(): void {
    if (!this.#isReadPaused) return;
    this.#isReadPaused = false;
    this.#pump();
    if (this.#isReadPaused) return;
    if (!this.#hasSocketEnded) this.#socket.resume();
    else if (!this.#hasRemoteClosed) this.#destroyTruncated();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('drain', this.#onDrain);
    this.#socket.off('close', this.#onSocketClose);
    // Keep a no-op error listener: the socket may still report a reset after we let go of it.
    this.#socket.off('error', this.#onSocketError);
    this.#socket.on('error', () => undefined);
    this.#socket.destroy();
    this.#send.destroy();
    this.#receive.destroy();
    const pending = this.#pendingWriteCallback;
    this.#pendingWriteCallback = undefined;
    pending?.(err ?? new SalaError('SALA_E_CHANNEL_CLOSED', 'The channel was closed.'));
    callback(err);
  }

  /**
   * Seals one message (the concatenation of `parts`) into a frame and appends the frame's pieces to
   * `out`: header and ciphertext are never copied into one buffer (see Aead.sealParts).
   */
  #seal(kind: FrameKind, parts: readonly Uint8Array[], out: Buffer[]): void {
    let payloadBytes = 0;
    for (const part of parts) payloadBytes += part.length;
    if (payloadBytes > this.maxPayloadBytes) {
      throw new SalaError(
        'SALA_E_FRAME_TOO_LARGE',
        `A ${payloadBytes}-byte message is larger than the channel's ${this.maxPayloadBytes}-byte limit.`,
      );
    }
    const kindByte = kind === FrameKind.Data ? DATA_KIND : CLOSE_KIND;
    const pieces = this.#send.encryptWithAdParts(EMPTY, [kindByte, ...parts], FRAME_HEADER_BYTES);
    const frameBytes = KIND_BYTES + payloadBytes + AEAD_TAG_BYTES;
    (pieces[0] as Buffer).writeUInt32BE(frameBytes, 0);
    this.#framesSent += 1;
    if (this.#framesSent % this.#rekeyIntervalFrames === 0) this.#send.rekey();
    for (const piece of pieces) out.push(piece);
  }

  /**
   * Writes frame pieces as one writev. Runs of small pieces (a header, a message envelope, a tag)
   * are joined first: each socket write has a fixed cost far above copying a few dozen bytes.
   */
  #writePieces(pieces: readonly Buffer[]): void {
    this.#socket.cork();
    let run: Buffer[] = [];
    let runBytes = 0;
    const flushRun = (): void => {
      if (run.length === 1) this.#socket.write(run[0] as Buffer);
      else if (run.length > 1) this.#socket.write(Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const piece of pieces) {
      if (piece.length >= JOIN_BELOW_BYTES) {
        flushRun();
        this.#socket.write(piece);
      } else {
        run.push(piece);
        runBytes += piece.length;
      }
    }
    flushRun();
    this.#socket.uncork();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#decoder.push(chunk);
    this.#pump();
  };

  /** Decrypts and delivers buffered frames until none is complete or the reader wants no more. */
  #pump(): void {
    while (!this.#isReadPaused && !this.destroyed && !this.#hasRemoteClosed) {
      let plaintext: Buffer;
      try {
        const frame = this.#decoder.nextTransient();
        if (frame === undefined) return;
        plaintext = this.#receive.decryptWithAd(EMPTY, frame);
      } catch (err) {
        this.destroy(toSalaError(err, 'SALA_E_CHANNEL_DECRYPT_FAILED', 'Received data failed authentication.'));
        return;
      }
      this.#framesReceived += 1;
      if (this.#framesReceived % this.#rekeyIntervalFrames === 0) this.#receive.rekey();
      const kind = plaintext[0];
      if (kind === FrameKind.Close && plaintext.length === KIND_BYTES) {
        this.#hasRemoteClosed = true;
        this.push(null);
        return;
      }
      if (kind !== FrameKind.Data) {
        this.destroy(new SalaError('SALA_E_PROTOCOL_MALFORMED', 'The other side sent a frame of an unknown kind.'));
        return;
      }
      if (!this.push(plaintext.subarray(KIND_BYTES))) {
        this.#isReadPaused = true;
        this.#socket.pause();
      }
    }
  }

  readonly #onEnd = (): void => {
    this.#hasSocketEnded = true;
    // A paused socket still emits 'end' once its own buffer is empty, while frames (perhaps the
    // CLOSE) wait in the decoder for our reader; _read() judges the end after delivering them.
    if (this.#hasRemoteClosed || this.#isReadPaused) return;
    this.#destroyTruncated();
  };

  #destroyTruncated(): void {
    const midFrame = this.#decoder.isMidFrame ? ' in the middle of a frame' : '';
    this.destroy(
      new SalaError(
        'SALA_E_CHANNEL_TRUNCATED',
        `The connection ended${midFrame} without the encrypted close; some data may be missing.`,
      ),
    );
  }

  readonly #onSocketClose = (): void => {
    if (this.destroyed) return;
    if (this.#hasRemoteClosed && this.writableFinished) {
      this.destroy();
      return;
    }
    this.#onEnd();
    if (!this.destroyed) this.destroy(new SalaError('SALA_E_CONNECTION_FAILED', 'The connection was closed.'));
  };

  readonly #onSocketError = (err: Error): void => {
    this.destroy(new SalaError('SALA_E_CONNECTION_FAILED', `The connection failed: ${err.message}`, { cause: err }));
  };

  readonly #onDrain = (): void => {
    const callback = this.#pendingWriteCallback;
    this.#pendingWriteCallback = undefined;
    callback?.();
  };
}

/** A message is a Buffer, or a list of Buffers sealed as their concatenation (never copied together). */
function toParts(chunk: unknown): readonly Uint8Array[] {
  if (chunk instanceof Uint8Array) return [chunk];
  if (Array.isArray(chunk) && chunk.every((part) => part instanceof Uint8Array)) return chunk as Uint8Array[];
  throw new SalaError('SALA_E_CONFIG_INVALID', 'SecureChannel.write() takes a Buffer or Uint8Array, or an array of them.');
}
