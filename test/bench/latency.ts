import { MessageChannel, type KeyPair, type SecureChannel } from '../../common/index.js';
import type { Socket } from 'node:net';
import type { AeadName, ReceiverStats, Transport } from './protocol.js';
import type { ReceiverProcess } from './receiver-process.js';
import { startResourceMeter, type ResourceUse } from './resources.js';
import { closeLink, dial } from './sender.js';
import { BrokenTransferError } from './throughput.js';

export interface LatencyResult {
  /** Round-trip times of the measured pings (warm-up excluded), microseconds, sorted ascending. */
  samplesUs: Float64Array;
  connectMs: number;
  sender: ResourceUse;
  receiver: ReceiverStats;
}

export interface PingSpec {
  transport: Transport;
  aead: AeadName;
  pings: number;
  warmupPings: number;
  pingBytes: number;
}

/** Nearest-rank percentile of ascending samples. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

type Exchange = (message: Buffer) => Promise<Buffer>;

/** One outstanding message at a time over a raw socket; TCP may split the reply, so reassemble it. */
function rawExchange(socket: Socket, size: number): Exchange {
  let chunks: Buffer[] = [];
  let bytes = 0;
  let waiter: { resolve: (reply: Buffer) => void; reject: (err: Error) => void } | undefined;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes < size) return;
    const reply = chunks.length === 1 ? chunk : Buffer.concat(chunks, bytes);
    chunks = [];
    bytes = 0;
    const w = waiter;
    waiter = undefined;
    if (w === undefined) socket.destroy(new BrokenTransferError('an echo arrived that nobody waited for'));
    else if (reply.length !== size) w.reject(new BrokenTransferError(`a ${reply.length}-byte echo, expected ${size}`));
    else w.resolve(reply);
  });
  socket.on('close', () => waiter?.reject(new BrokenTransferError('the connection closed during a ping')));
  return (message) =>
    new Promise<Buffer>((resolve, reject) => {
      waiter = { resolve, reject };
      socket.write(message);
    });
}

function channelExchange(channel: SecureChannel): Exchange {
  let waiter: { resolve: (reply: Buffer) => void; reject: (err: Error) => void } | undefined;
  channel.on('data', (reply: Buffer) => {
    const w = waiter;
    waiter = undefined;
    if (w === undefined) channel.destroy(new BrokenTransferError('an echo arrived that nobody waited for'));
    else w.resolve(reply);
  });
  channel.on('close', () => waiter?.reject(new BrokenTransferError('the channel closed during a ping')));
  return (message) =>
    new Promise<Buffer>((resolve, reject) => {
      waiter = { resolve, reject };
      channel.write(message);
    });
}

function messageExchange(messages: MessageChannel): Exchange {
  return async (message) => {
    const { data } = await messages.ping(message);
    if (data === undefined) throw new BrokenTransferError('a pong came back without its data');
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  };
}

/**
 * Ping-pong: send one `pingBytes` message, wait for its echo, repeat. Each message carries its
 * sequence number, and each echo is checked against it, so a lost or mixed-up echo fails the run.
 */
export async function pingPong(receiver: ReceiverProcess, spec: PingSpec, staticKeyPair: KeyPair): Promise<LatencyResult> {
  const total = spec.warmupPings + spec.pings;
  const signal = AbortSignal.timeout(30_000 + total * 5);
  const task = await receiver.begin({ kind: 'echo', transport: spec.transport, aead: spec.aead, messageBytes: spec.pingBytes });
  const link = await dial(task.port, spec.transport === 'raw' ? 'raw' : 'secure', spec.aead, staticKeyPair, signal);
  const messages = link.kind === 'secure' && spec.transport === 'message' ? new MessageChannel(link.stream) : undefined;
  try {
    let exchange: Exchange;
    if (messages !== undefined) exchange = messageExchange(messages);
    else if (link.kind === 'raw') exchange = rawExchange(link.stream, spec.pingBytes);
    else exchange = channelExchange(link.stream);
    const message = Buffer.alloc(spec.pingBytes, 0x5a);
    const samplesUs = new Float64Array(spec.pings);
    const meter = startResourceMeter();
    for (let i = 0; i < total; i += 1) {
      signal.throwIfAborted();
      message.writeUInt32BE(i, 0);
      const startedAt = performance.now();
      const reply = await exchange(message);
      const rttUs = (performance.now() - startedAt) * 1000;
      if (reply.length !== spec.pingBytes || reply.readUInt32BE(0) !== i) {
        throw new BrokenTransferError(`echo ${i} came back wrong (${reply.length} bytes)`);
      }
      if (i >= spec.warmupPings) samplesUs[i - spec.warmupPings] = rttUs;
    }
    const sender = meter.stop();
    if (messages !== undefined) await messages.close();
    else await closeLink(link, signal);
    const stats = await task.finished(10_000);
    return { samplesUs: samplesUs.sort(), connectMs: link.connectMs, sender, receiver: stats };
  } finally {
    link.stream.destroy();
  }
}
