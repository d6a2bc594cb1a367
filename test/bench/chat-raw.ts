/**
 * The chat benchmark's baseline: a raw TCP ping-pong between the same two processes that run the
 * peers, Nagle off on both ends, one message in flight, every echo checked for its sequence number.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Echoes every byte back on each connection; resolves with the port on 127.0.0.1. */
export async function listenRawEcho(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
  });
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server };
}

/**
 * `warmup + pings` round trips of `bytes` bytes to 127.0.0.1:port; returns the measured ones in
 * microseconds, sorted. TCP may split an echo, so it is reassembled before the clock stops.
 */
export async function rawPing(port: number, pings: number, warmup: number, bytes: number, signal: AbortSignal): Promise<number[]> {
  const socket: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
  socket.on('error', () => undefined);
  await once(socket, 'connect', { signal });
  try {
    let received = 0;
    let reply: Buffer = Buffer.alloc(0);
    let waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
    socket.on('data', (chunk: Buffer) => {
      reply = received === 0 ? chunk : Buffer.concat([reply, chunk]);
      received += chunk.length;
      if (received < bytes) return;
      const w = waiter;
      waiter = undefined;
      received = 0;
      w?.resolve();
    });
    socket.on('close', () => waiter?.reject(new Error('the raw connection closed during a ping')));
    const message = Buffer.alloc(bytes, 0x61);
    const samples: number[] = [];
    for (let i = 0; i < warmup + pings; i += 1) {
      signal.throwIfAborted();
      message.writeUInt32BE(i, 0);
      const startedAt = performance.now();
      await new Promise<void>((resolve, reject) => {
        waiter = { resolve, reject };
        socket.write(message);
      });
      const elapsedUs = (performance.now() - startedAt) * 1000;
      if (reply.length !== bytes || reply.readUInt32BE(0) !== i) throw new Error(`echo ${i} came back wrong`);
      if (i >= warmup) samples.push(elapsedUs);
    }
    return samples.sort((a, b) => a - b);
  } finally {
    socket.destroy();
  }
}
