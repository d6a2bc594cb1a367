import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  acceptSecure,
  connectSecure,
  hybridAead,
  sodiumAead,
  type Aead,
  type KeyPair,
  type SecureChannel,
} from '../../common/index.js';
import type { AeadName } from './protocol.js';

/** Everything the benchmark opens is on loopback; nothing listens on or dials another address. */
export const BENCH_HOST = '127.0.0.1';
const PURPOSE = 'bench';

export function aeadFor(name: AeadName): Aead {
  // 'node' is the channel's default: node:crypto, with libsodium for frames under 4 KiB.
  return name === 'libsodium' ? sodiumAead : hybridAead;
}

/** A sender that fails before dialling must not leave the receiver waiting for ever. */
const ACCEPT_TIMEOUT_MS = 15_000;

/**
 * A listener on 127.0.0.1:0 that takes exactly one connection and then stops listening, so a
 * stray second connection can never join a measurement.
 */
export async function listenOnce(): Promise<{ port: number; accepted: Promise<Socket>; close(): void }> {
  const server: Server = createServer({ noDelay: true });
  const accepted = new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => {
      server.close();
      reject(new Error(`no connection within ${ACCEPT_TIMEOUT_MS} ms`));
    }, ACCEPT_TIMEOUT_MS);
    timer.unref();
    server.once('connection', (socket: Socket) => {
      clearTimeout(timer);
      server.close();
      resolve(socket);
    });
    server.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  // A listener that is closed before anyone dials must not leave an unhandled rejection behind.
  accepted.catch(() => undefined);
  server.listen(0, BENCH_HOST);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    close: () => server.close(),
  };
}

/** Dials 127.0.0.1:port with Nagle off, the same socket setting SecureChannel uses. */
export async function dialRaw(port: number, signal: AbortSignal): Promise<Socket> {
  const socket = connect({ host: BENCH_HOST, port, noDelay: true });
  try {
    await once(socket, 'connect', { signal });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return socket;
}

export function dialSecure(port: number, staticKeyPair: KeyPair, aead: AeadName, signal: AbortSignal): Promise<SecureChannel> {
  return connectSecure({ host: BENCH_HOST, port, purpose: PURPOSE, staticKeyPair, transportAead: aeadFor(aead), signal });
}

export function acceptBenchSecure(socket: Socket, staticKeyPair: KeyPair, aead: AeadName): Promise<SecureChannel> {
  return acceptSecure(socket, { purpose: PURPOSE, staticKeyPair, transportAead: aeadFor(aead) });
}
