import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KeyPair, SecureChannel } from '../../common/index.js';
import { dialRaw, dialSecure } from './endpoints.js';
import type { AeadName, Transport } from './protocol.js';

interface LinkBase {
  /** Time from dialling to a usable link (TCP connect, plus the Noise XX handshake if secure). */
  connectMs: number;
  /** Resolves when the link has closed, with the first error it reported (if any). */
  closed: Promise<Error | undefined>;
}

/** A connected sending end: a raw socket or a SecureChannel, both Duplex streams of Buffers. */
export type Link = (LinkBase & { kind: 'raw'; stream: Socket }) | (LinkBase & { kind: 'secure'; stream: SecureChannel });

/**
 * Dials the receiver. An error listener is attached at once and kept, so a late reset can never be
 * an uncaught 'error'; the error shows up in `closed` instead.
 */
export async function dial(
  port: number,
  transport: Exclude<Transport, 'message'>,
  aead: AeadName,
  staticKeyPair: KeyPair,
  signal: AbortSignal,
): Promise<Link> {
  const startedAt = performance.now();
  const link =
    transport === 'raw'
      ? ({ kind: 'raw', stream: await dialRaw(port, signal) } as const)
      : ({ kind: 'secure', stream: await dialSecure(port, staticKeyPair, aead, signal) } as const);
  const connectMs = performance.now() - startedAt;
  const stream: Duplex = link.stream;
  let firstError: Error | undefined;
  stream.on('error', (err: Error) => {
    firstError ??= err;
  });
  // Not events.once: it would reject on 'error', and nobody may be awaiting `closed` yet.
  const closed = new Promise<Error | undefined>((resolve) => {
    if (stream.closed) resolve(firstError);
    else stream.once('close', () => resolve(firstError));
  });
  return { ...link, connectMs, closed };
}

/** Ends the link gracefully and waits (bounded by `signal`) until it has closed without error. */
export async function closeLink(link: Link, signal: AbortSignal): Promise<void> {
  link.stream.end();
  // Keep reading, so the other side's end (for a channel: its encrypted close) is seen.
  link.stream.resume();
  const aborted = once(signal, 'abort').then(() => new Error('the link did not close in time'));
  const err = await Promise.race([link.closed, aborted]);
  if (err !== undefined) throw err;
}

/** Writes `bytes` bytes in `chunkBytes` writes, waiting for 'drain' whenever write() says so. */
export async function writeBytes(stream: Duplex, bytes: number, payload: Buffer, signal: AbortSignal): Promise<void> {
  const chunkBytes = payload.length;
  for (let left = bytes; left > 0; left -= chunkBytes) {
    const chunk = left >= chunkBytes ? payload : payload.subarray(0, left);
    if (!stream.write(chunk)) await once(stream, 'drain', { signal });
  }
}
