/**
 * The benchmark's second process: the receiver / Noise responder. `run.js` starts it and feeds it
 * one task per stdin line (see protocol.ts); for each it listens once on 127.0.0.1:0, prints
 * `bench.listening`, serves the one connection, and prints `bench.done` with its own CPU time and
 * peak RSS, or `bench.failed`. It exits by itself when its stdin ends (the parent finished, or died).
 *   node dist/test/bench/receiver.js
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import {
  generateStaticKeyPair,
  initCrypto,
  MessageChannel,
  type KeyPair,
  type SalaError,
  type SecureChannel,
} from '../../common/index.js';
import { acceptBenchSecure, listenOnce } from './endpoints.js';
import {
  assertNever,
  EVENT_DONE,
  EVENT_FAILED,
  EVENT_LISTENING,
  parseTask,
  type DiscardTask,
  type EchoTask,
  type FileTask,
  type ReceiverStats,
  type ReceiverTask,
} from './protocol.js';
import { startResourceMeter } from './resources.js';

function emit(event: string, fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function describe(err: unknown): string {
  if (err instanceof Error) return 'code' in err ? `${String(err.code)}: ${err.message}` : err.message;
  return String(err);
}

/** Tracks the open sockets so that the end of stdin can tear everything down at once. */
const openSockets = new Set<Socket>();

function track(socket: Socket): Socket {
  openSockets.add(socket);
  socket.once('close', () => openSockets.delete(socket));
  return socket;
}

async function runTask(task: ReceiverTask, staticKeyPair: KeyPair): Promise<void> {
  const listener = await listenOnce();
  emit(EVENT_LISTENING, { id: task.id, port: listener.port });
  const socket = track(await listener.accepted);
  // The meter starts at accept: the handshake is included but is three small messages.
  const meter = startResourceMeter();
  let bytes: number;
  if (task.transport === 'raw') {
    bytes = await serveRaw(task, socket);
  } else {
    const channel = await acceptBenchSecure(socket, staticKeyPair, task.aead);
    bytes = await serveSecure(task, channel);
  }
  const stats: ReceiverStats = { bytes, ...meter.stop() };
  emit(EVENT_DONE, { id: task.id, ...stats });
}

function serveRaw(task: ReceiverTask, socket: Socket): Promise<number> {
  switch (task.kind) {
    case 'discard':
      return discardRaw(task, socket);
    case 'file':
      return receiveFile(task, socket);
    case 'echo':
      return echoRaw(task, socket);
    default:
      return assertNever(task);
  }
}

function serveSecure(task: ReceiverTask, channel: SecureChannel): Promise<number> {
  switch (task.kind) {
    case 'discard':
      return discardSecure(task, channel);
    case 'file':
      return receiveFile(task, channel);
    case 'echo':
      return task.transport === 'message' ? echoMessages(channel) : echoSecure(channel);
    default:
      return assertNever(task);
  }
}

/** Resolves with the byte count once exactly `expectedBytes` arrived; more is a broken transfer. */
function discardRaw(task: DiscardTask, socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === task.expectedBytes) resolve(received);
      else if (received > task.expectedBytes) reject(new Error(`received ${received} bytes, expected ${task.expectedBytes}`));
    });
    socket.once('error', reject);
    socket.once('end', () => {
      if (received !== task.expectedBytes) reject(new Error(`connection ended after ${received} of ${task.expectedBytes} bytes`));
    });
  });
}

function discardSecure(task: DiscardTask, channel: SecureChannel): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    channel.on('data', (message: Buffer) => {
      received += message.length;
      if (received === task.expectedBytes) resolve(received);
      else if (received > task.expectedBytes) reject(new Error(`received ${received} bytes, expected ${task.expectedBytes}`));
    });
    channel.once('error', reject);
    channel.once('end', () => {
      if (received !== task.expectedBytes) reject(new Error(`channel ended after ${received} of ${task.expectedBytes} bytes`));
    });
  });
}

/**
 * Socket or channel → file with stream.pipeline, so a slow disk pauses the socket. A raw socket
 * ends with TCP FIN; a channel only ends on its authenticated close frame, so truncation fails here.
 */
async function receiveFile(task: FileTask, source: Socket | SecureChannel): Promise<number> {
  await pipeline(source, createWriteStream(task.path, { highWaterMark: task.chunkBytes }));
  const { size } = await stat(task.path);
  if (size !== task.expectedBytes) throw new Error(`wrote ${size} bytes to the file, expected ${task.expectedBytes}`);
  return size;
}

/** Echoes every `messageBytes` bytes as they complete (TCP may split or merge small writes). */
async function echoRaw(task: EchoTask, socket: Socket): Promise<number> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let echoed = 0;
  socket.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    const whole = pendingBytes - (pendingBytes % task.messageBytes);
    if (whole === 0) return;
    const joined = pending.length === 1 ? chunk : Buffer.concat(pending, pendingBytes);
    socket.write(joined.subarray(0, whole));
    echoed += whole;
    pending = whole === pendingBytes ? [] : [joined.subarray(whole)];
    pendingBytes -= whole;
  });
  await once(socket, 'close');
  return echoed;
}

async function echoSecure(channel: SecureChannel): Promise<number> {
  let echoed = 0;
  channel.on('data', (message: Buffer) => {
    echoed += message.length;
    channel.write(message);
  });
  await once(channel, 'close');
  return echoed;
}

/** MessageChannel answers every ping with a pong by itself; this only keeps the channel open. */
async function echoMessages(channel: SecureChannel): Promise<number> {
  const messages = new MessageChannel(channel);
  let failure: SalaError | undefined;
  messages.on('error', (err) => {
    failure = err;
  });
  await once(messages, 'close');
  if (failure !== undefined && failure.code !== 'SALA_E_CHANNEL_CLOSED') throw failure;
  return 0;
}

async function main(): Promise<void> {
  await initCrypto();
  const staticKeyPair = generateStaticKeyPair();
  // Tasks arrive one at a time (the parent waits for each bench.done), but queue them anyway.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (text) => {
    let task: ReceiverTask;
    try {
      task = parseTask(JSON.parse(text));
    } catch (err) {
      emit(EVENT_FAILED, { id: -1, message: `bad task line: ${describe(err)}` });
      return;
    }
    queue = queue.then(() =>
      runTask(task, staticKeyPair).catch((err: unknown) => emit(EVENT_FAILED, { id: task.id, message: describe(err) })),
    );
  });
  // No orphans: the parent closing our stdin, or dying, ends this process.
  lines.once('close', () => {
    for (const socket of openSockets) socket.destroy();
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench receiver: ${describe(err)}\n`);
  process.exit(1);
});
