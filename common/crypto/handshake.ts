import { connect, type Socket } from 'node:net';
import { DEFAULTS, PROTOCOL_VERSION } from '../config/defaults.js';
import { ConfigInvalidError, SalaError } from '../errors.js';
import { FrameDecoder, encodeFrame } from '../wire/frame-decoder.js';
import { fastestAead, type Aead } from './aead.js';
import { HandshakeState, DH_LEN, type KeyPair } from './noise/handshake-state.js';
import { SecureChannel } from './secure-channel.js';

const EMPTY = new Uint8Array(0);
/** The largest payload that fits msg 2 (e 32 + encrypted s 48 + tag 16) within Noise's 65535 bytes. */
const MAX_HANDSHAKE_PAYLOAD_BYTES = DEFAULTS.maxHandshakeMessageBytes - DH_LEN - (DH_LEN + 16) - 16;

/** What the handshake has established when a payload is due or the other side is to be judged. */
export interface HandshakeContext {
  /** h at this point: after msg 2 for the initiator's msg-3 payload (the login proof signs it). */
  readonly handshakeHash: Uint8Array;
  /** Present once the other side's static key has been received and authenticated. */
  readonly remoteStatic: Uint8Array | undefined;
}

export interface RemoteHello {
  readonly remoteStatic: Uint8Array;
  readonly payload: Buffer;
  /** h after the other side's message. */
  readonly handshakeHash: Uint8Array;
  /**
   * h before the other side's message was read: for the responder judging msg 3 this is h2, the
   * value the initiator's msg-3 payload could sign (a proof bound to this very handshake).
   */
  readonly handshakeHashBefore: Uint8Array;
}

export interface SecureChannelOptions {
  /** Our X25519 Noise static key pair. */
  staticKeyPair: KeyPair;
  /**
   * What this connection is for (`link`, `rdv`, …). The prologue `sala/<version> <purpose>` is mixed
   * into the handshake hash, so a different protocol version or purpose fails the handshake.
   */
  purpose: string;
  /** Initiator: refuse (before sending msg 3) unless the responder proves this static key. */
  expectedRemoteStatic?: Uint8Array;
  /** Our handshake payload: msg 2 for the responder, msg 3 for the initiator (both encrypted). */
  payload?: (context: HandshakeContext) => Uint8Array | Promise<Uint8Array>;
  /** Judges the other side; throw to abort. Initiator: after msg 2, before msg 3. Responder: after msg 3. */
  verifyRemote?: (hello: RemoteHello) => void | Promise<void>;
  handshakeTimeoutMs?: number;
  maxFrameBytes?: number;
  rekeyIntervalFrames?: number;
  /** Transport AEAD backend; defaults to node:crypto when available (tests pin libsodium). */
  transportAead?: Aead;
  signal?: AbortSignal;
}

export type Role = 'initiator' | 'responder';

export function prologueFor(purpose: string): Uint8Array {
  return new TextEncoder().encode(`sala/${PROTOCOL_VERSION} ${purpose}`);
}

function validateOptions(options: SecureChannelOptions): void {
  if (options.staticKeyPair.privateKey.length !== DH_LEN || options.staticKeyPair.publicKey.length !== DH_LEN) {
    throw new ConfigInvalidError('staticKeyPair', 'must hold 32-byte X25519 keys');
  }
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(options.purpose)) {
    throw new ConfigInvalidError('purpose', 'must be a short lower-case word');
  }
  const timeout = options.handshakeTimeoutMs;
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) {
    throw new ConfigInvalidError('handshakeTimeoutMs', 'must be a positive number of milliseconds');
  }
  const maxFrame = options.maxFrameBytes;
  if (maxFrame !== undefined && (!Number.isInteger(maxFrame) || maxFrame < 64 || maxFrame > 16 * 1024 * 1024)) {
    throw new ConfigInvalidError('maxFrameBytes', 'must be an integer between 64 and 16 MiB');
  }
  const rekey = options.rekeyIntervalFrames;
  if (rekey !== undefined && (!Number.isInteger(rekey) || rekey < 1)) {
    throw new ConfigInvalidError('rekeyIntervalFrames', 'must be a positive integer');
  }
}

/**
 * Runs Noise XX over a connected socket and returns the SecureChannel on success. On any failure the
 * socket is destroyed and the promise rejects with a SalaError: SALA_E_HANDSHAKE_FAILED for anything
 * malformed or unauthentic (never saying which check failed), SALA_E_HANDSHAKE_TIMEOUT,
 * SALA_E_REMOTE_KEY_MISMATCH, SALA_E_ABORTED, or whatever SalaError `verifyRemote` threw.
 */
export async function secureHandshake(socket: Socket, role: Role, options: SecureChannelOptions): Promise<SecureChannel> {
  validateOptions(options);
  options.signal?.throwIfAborted();
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs;
  // Chat is many small frames: Nagle's algorithm would hold each behind the previous one's ACK.
  socket.setNoDelay(true);
  const reader = new HandshakeFrameReader(socket, timeoutMs, options.signal);
  const state = new HandshakeState({
    pattern: 'XX',
    isInitiator: role === 'initiator',
    prologue: prologueFor(options.purpose),
    staticKeyPair: options.staticKeyPair,
  });
  const writeMessage = (payload: Uint8Array): void => {
    if (payload.length > MAX_HANDSHAKE_PAYLOAD_BYTES) {
      throw new ConfigInvalidError('payload', `must be at most ${MAX_HANDSHAKE_PAYLOAD_BYTES} bytes`);
    }
    socket.write(encodeFrame(state.writeMessage(payload)));
  };
  const judge = async (payload: Buffer, handshakeHashBefore: Uint8Array): Promise<void> => {
    const remoteStatic = state.remoteStatic;
    if (remoteStatic === undefined) throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
    const expected = options.expectedRemoteStatic;
    if (expected !== undefined && !Buffer.from(expected).equals(Buffer.from(remoteStatic))) {
      throw new SalaError(
        'SALA_E_REMOTE_KEY_MISMATCH',
        'The other side proved a different key from the one expected: it is not who it claims to be.',
      );
    }
    await options.verifyRemote?.({ remoteStatic, payload, handshakeHash: state.handshakeHash, handshakeHashBefore });
  };

  try {
    let remotePayload: Buffer;
    if (role === 'initiator') {
      writeMessage(EMPTY); // -> e
      const before = state.handshakeHash;
      remotePayload = state.readMessage(await reader.next()); // <- e, ee, s, es
      await reader.guard(judge(remotePayload, before));
      writeMessage(await reader.guard(Promise.resolve(options.payload?.(context(state)) ?? EMPTY))); // -> s, se
    } else {
      const first = state.readMessage(await reader.next()); // -> e
      if (first.length !== 0) throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
      writeMessage(await reader.guard(Promise.resolve(options.payload?.(context(state)) ?? EMPTY))); // <- e, ee, s, es
      const before = state.handshakeHash;
      remotePayload = state.readMessage(await reader.next()); // -> s, se
      await reader.guard(judge(remotePayload, before));
    }
    const remoteStatic = state.remoteStatic;
    if (remoteStatic === undefined) throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.');
    const handshakeHash = state.handshakeHash;
    const { send, receive } = state.split(options.transportAead ?? fastestAead());
    const decoder = reader.release();
    return new SecureChannel({
      socket,
      decoder,
      send,
      receive,
      remoteStatic,
      remotePayload,
      handshakeHash,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      rekeyIntervalFrames: options.rekeyIntervalFrames ?? DEFAULTS.rekeyIntervalFrames,
    });
  } catch (err) {
    const failure = reader.failure ?? asHandshakeError(err);
    reader.release();
    socket.on('error', () => undefined); // a late reset must not become an uncaught error
    socket.destroy();
    throw failure;
  }
}

function context(state: HandshakeState): HandshakeContext {
  return { handshakeHash: state.handshakeHash, remoteStatic: state.remoteStatic };
}

function asHandshakeError(err: unknown): SalaError {
  if (err instanceof SalaError) return err;
  return new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.', { cause: err });
}

/** Accepts an incoming connection as the Noise responder. */
export function acceptSecure(socket: Socket, options: SecureChannelOptions): Promise<SecureChannel> {
  return secureHandshake(socket, 'responder', options);
}

export interface ConnectSecureOptions extends SecureChannelOptions {
  host: string;
  port: number;
  /** Bound on the TCP connect itself; the handshake has its own timeout. */
  connectTimeoutMs?: number;
}

/** Dials host:port and runs the handshake as the initiator. */
export async function connectSecure(options: ConnectSecureOptions): Promise<SecureChannel> {
  validateOptions(options);
  options.signal?.throwIfAborted();
  const socket = await dialTcp(options.host, options.port, options.connectTimeoutMs ?? DEFAULTS.handshakeTimeoutMs, options.signal);
  return secureHandshake(socket, 'initiator', options);
}

/** Opens a TCP connection or rejects with SALA_E_CONNECTION_FAILED / SALA_E_ABORTED. */
export function dialTcp(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const finish = (err?: SalaError): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err === undefined) {
        resolve(socket);
        return;
      }
      socket.on('error', () => undefined);
      socket.destroy();
      reject(err);
    };
    const onConnect = (): void => finish();
    const onError = (err: Error): void =>
      finish(new SalaError('SALA_E_CONNECTION_FAILED', `Could not connect to ${host}:${port} (${err.message}).`, { cause: err }));
    const onAbort = (): void => finish(new SalaError('SALA_E_ABORTED', `Connecting to ${host}:${port} was cancelled.`));
    const timer = setTimeout(
      () => finish(new SalaError('SALA_E_CONNECTION_FAILED', `Could not connect to ${host}:${port} within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    timer.unref();
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Reads whole handshake messages off the socket, one at a time, with the handshake's deadline.
 * The socket is paused except while a message is awaited, so a peer cannot make us buffer more than
 * one TCP read beyond the message we want; bytes that follow the last message stay in the decoder
 * and are handed to the SecureChannel.
 */
class HandshakeFrameReader {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder({ maxFrameBytes: DEFAULTS.maxHandshakeMessageBytes });
  readonly #timer: NodeJS.Timeout;
  readonly #signal: AbortSignal | undefined;
  #waiter: { resolve: (frame: Buffer) => void; reject: (err: SalaError) => void } | undefined;
  #failure: SalaError | undefined;
  #failureListeners = new Set<(err: SalaError) => void>();

  constructor(socket: Socket, timeoutMs: number, signal?: AbortSignal) {
    this.#socket = socket;
    this.#signal = signal;
    socket.pause();
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(
      () => this.#fail(new SalaError('SALA_E_HANDSHAKE_TIMEOUT', `The handshake did not finish within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    this.#timer.unref();
  }

  get failure(): SalaError | undefined {
    return this.#failure;
  }

  next(): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const buffered = this.#tryFrame();
    if (buffered !== undefined) return Promise.resolve(buffered);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<Buffer>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#socket.resume();
    });
  }

  /** Races a callback's promise against the deadline, abort and connection loss. */
  guard<T>(work: Promise<T>): Promise<T> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      const onFailure = (err: SalaError): void => reject(err);
      this.#failureListeners.add(onFailure);
      work.then(
        (value) => {
          this.#failureListeners.delete(onFailure);
          resolve(value);
        },
        (err: unknown) => {
          this.#failureListeners.delete(onFailure);
          reject(asHandshakeError(err));
        },
      );
    });
  }

  /** Stops listening and returns the decoder with whatever followed the last handshake message. */
  release(): FrameDecoder {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    this.#socket.pause();
    return this.#decoder;
  }

  #tryFrame(): Buffer | undefined {
    try {
      return this.#decoder.next();
    } catch (err) {
      // An impossible length here means the other side is not speaking the Sala handshake at all.
      this.#fail(new SalaError('SALA_E_HANDSHAKE_FAILED', 'The other side did not speak the Sala handshake.', { cause: err }));
      return undefined;
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#decoder.push(chunk);
    if (this.#waiter === undefined) {
      this.#socket.pause();
      return;
    }
    const frame = this.#tryFrame();
    if (frame === undefined) return;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    this.#socket.pause();
    waiter.resolve(frame);
  };

  readonly #onEnd = (): void => {
    this.#fail(new SalaError('SALA_E_HANDSHAKE_FAILED', 'The other side closed the connection during the handshake.'));
  };

  readonly #onError = (err: Error): void => {
    this.#fail(new SalaError('SALA_E_HANDSHAKE_FAILED', `The connection failed during the handshake (${err.message}).`, { cause: err }));
  };

  readonly #onAbort = (): void => {
    this.#fail(new SalaError('SALA_E_ABORTED', 'The handshake was cancelled.'));
  };

  #fail(err: SalaError): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(err);
    for (const listener of this.#failureListeners) listener(err);
    this.#failureListeners.clear();
    this.#socket.destroy();
  }
}
