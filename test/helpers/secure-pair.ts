import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import {
  acceptSecure,
  connectSecure,
  generateStaticKeyPair,
  type KeyPair,
  type SecureChannel,
  type SecureChannelOptions,
} from '../../common/crypto/index.js';

export interface Listener {
  server: Server;
  port: number;
  /** Every handshake result on the responder side, in order of arrival. */
  results: Promise<SecureChannel>[];
  /** Resolves with the next handshake result (fulfilled or rejected) on the responder side. */
  nextResult(): Promise<PromiseSettledResult<SecureChannel>>;
  staticKeyPair: KeyPair;
}

/**
 * A real TCP listener on 127.0.0.1:0 whose connections run the responder handshake. Closed, with
 * every socket, when the test finishes.
 */
export async function listenSecure(options: Partial<SecureChannelOptions> = {}): Promise<Listener> {
  const staticKeyPair = options.staticKeyPair ?? generateStaticKeyPair();
  const results: Promise<SecureChannel>[] = [];
  const waiters: ((r: PromiseSettledResult<SecureChannel>) => void)[] = [];
  const settled: PromiseSettledResult<SecureChannel>[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const result = acceptSecure(socket, { purpose: 'test', ...options, staticKeyPair });
    results.push(result);
    result.then(
      (value) => deliver({ status: 'fulfilled', value }),
      (reason: unknown) => deliver({ status: 'rejected', reason }),
    );
  });
  const deliver = (r: PromiseSettledResult<SecureChannel>): void => {
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(r);
    else settled.push(r);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    results,
    staticKeyPair,
    nextResult: () => {
      const ready = settled.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

export async function dialSecure(port: number, options: Partial<SecureChannelOptions> = {}): Promise<SecureChannel> {
  const channel = await connectSecure({
    host: '127.0.0.1',
    port,
    purpose: 'test',
    staticKeyPair: options.staticKeyPair ?? generateStaticKeyPair(),
    ...options,
  });
  // A test that breaks the server side makes this side fail too; that error is expected, and tests
  // that care read it with nextError().
  channel.on('error', () => undefined);
  onTestFinished(() => {
    channel.destroy();
  });
  return channel;
}

/** A connected pair of channels over real loopback TCP. */
export async function securePair(
  responder: Partial<SecureChannelOptions> = {},
  initiator: Partial<SecureChannelOptions> = {},
): Promise<{ client: SecureChannel; server: SecureChannel; listener: Listener }> {
  const listener = await listenSecure(responder);
  const client = await dialSecure(listener.port, initiator);
  const result = await listener.nextResult();
  if (result.status === 'rejected') throw result.reason;
  const server = result.value;
  server.on('error', () => undefined);
  onTestFinished(() => {
    server.destroy();
  });
  return { client, server, listener };
}

/** The next message on a channel, with a deadline. */
export function nextData(channel: SecureChannel, timeoutMs = 2_000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no data within ${timeoutMs} ms`)), timeoutMs);
    const onData = (data: Buffer): void => finish(undefined, data);
    const onError = (err: Error): void => finish(err);
    const onEnd = (): void => finish(new Error('channel ended'));
    function finish(err: Error | undefined, data?: Buffer): void {
      clearTimeout(timer);
      channel.off('data', onData);
      channel.off('error', onError);
      channel.off('end', onEnd);
      if (err !== undefined) reject(err);
      else resolve(data as Buffer);
    }
    channel.once('data', onData);
    channel.once('error', onError);
    channel.once('end', onEnd);
  });
}

/** The error a channel is destroyed with, with a deadline. */
export function nextError(channel: SecureChannel, timeoutMs = 2_000): Promise<Error> {
  return new Promise<Error>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no error within ${timeoutMs} ms`)), timeoutMs);
    channel.once('error', (err: Error) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}
