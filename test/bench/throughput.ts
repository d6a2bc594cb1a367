import { randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { KeyPair } from '../../common/index.js';
import type { AeadName, ReceiverStats } from './protocol.js';
import type { ReceiverProcess } from './receiver-process.js';
import { startResourceMeter, type ResourceUse } from './resources.js';
import { closeLink, dial, writeBytes } from './sender.js';
import { sha256File } from './temp-file.js';

export interface TransferResult {
  bytes: number;
  /** Sender's first write → the receiver reporting the last byte (file: the file closed). */
  seconds: number;
  sender: ResourceUse;
  receiver: ReceiverStats;
}

export class BrokenTransferError extends Error {
  override get name(): string {
    return 'BrokenTransferError';
  }
}

/** Generous, so that only a stalled transfer fails: 30 s plus 10 MiB/s. */
function deadlineMs(bytes: number): number {
  return 30_000 + bytes / (10 * 1024 * 1024) * 1000;
}

export interface TransferSpec {
  transport: 'raw' | 'secure';
  aead: AeadName;
  bytes: number;
  chunkBytes: number;
}

/** Memory → discard: the same random `chunkBytes` buffer written until `bytes` have been sent. */
export async function memoryToDiscard(
  receiver: ReceiverProcess,
  spec: TransferSpec,
  staticKeyPair: KeyPair,
): Promise<TransferResult> {
  const signal = AbortSignal.timeout(deadlineMs(spec.bytes));
  const payload = randomFillSync(Buffer.allocUnsafe(spec.chunkBytes));
  const task = await receiver.begin({ kind: 'discard', transport: spec.transport, aead: spec.aead, expectedBytes: spec.bytes });
  const link = await dial(task.port, spec.transport, spec.aead, staticKeyPair, signal);
  try {
    const meter = startResourceMeter();
    await writeBytes(link.stream, spec.bytes, payload, signal);
    link.stream.end();
    const stats = await task.finished(deadlineMs(spec.bytes));
    const sender = meter.stop();
    await closeLink(link, signal);
    if (stats.bytes !== spec.bytes) throw new BrokenTransferError(`the receiver counted ${stats.bytes} of ${spec.bytes} bytes`);
    return { bytes: spec.bytes, seconds: sender.wallMs / 1000, sender, receiver: stats };
  } finally {
    link.stream.destroy();
  }
}

/**
 * File → file: a file stream into the link with stream.pipeline (each read chunk is one write,
 * i.e. one channel message), and the receiver pipes the link into a file stream. The copy is then
 * checked against the source's size and SHA-256, outside the timed interval, and deleted.
 */
export async function fileToFile(
  receiver: ReceiverProcess,
  spec: TransferSpec & { source: string; sourceSha256: string; destination: string },
  staticKeyPair: KeyPair,
): Promise<TransferResult> {
  const signal = AbortSignal.timeout(deadlineMs(spec.bytes));
  const task = await receiver.begin({
    kind: 'file',
    transport: spec.transport,
    aead: spec.aead,
    expectedBytes: spec.bytes,
    path: spec.destination,
    chunkBytes: spec.chunkBytes,
  });
  const link = await dial(task.port, spec.transport, spec.aead, staticKeyPair, signal);
  try {
    link.stream.resume(); // a channel ends only after both closes; keep its readable side flowing
    const meter = startResourceMeter();
    await pipeline(createReadStream(spec.source, { highWaterMark: spec.chunkBytes }), link.stream, { signal });
    const stats = await task.finished(deadlineMs(spec.bytes));
    const sender = meter.stop();
    await closeLink(link, signal);
    if (stats.bytes !== spec.bytes) throw new BrokenTransferError(`the received file has ${stats.bytes} of ${spec.bytes} bytes`);
    const receivedSha256 = await sha256File(spec.destination);
    if (receivedSha256 !== spec.sourceSha256) {
      throw new BrokenTransferError('the received file differs from the source (SHA-256)');
    }
    return { bytes: spec.bytes, seconds: sender.wallMs / 1000, sender, receiver: stats };
  } finally {
    link.stream.destroy();
    await rm(spec.destination, { force: true });
  }
}
