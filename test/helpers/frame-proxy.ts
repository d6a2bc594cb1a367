import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { FrameDecoder } from '../../common/wire/frame-decoder.js';

export type Direction = 'toServer' | 'toClient';

/** What to do with one wire frame (4-byte header plus body): forward these bytes, or cut the link. */
export type FrameAction = Buffer | Buffer[] | 'drop' | 'hold' | { cutAfter: Buffer };

export interface FrameEvent {
  direction: Direction;
  /** Index of this frame in its direction: 0, 1, 2 are handshake messages, then transport frames. */
  index: number;
  wire: Buffer;
}

/**
 * A man in the middle on 127.0.0.1 that parses the length-prefixed frames flowing each way and lets
 * a test rewrite, duplicate, reorder, drop or cut them — a LAN attacker in a few lines, over real TCP.
 * 'hold' keeps a frame back; the next frame's action may release held frames by returning them.
 */
export async function startFrameProxy(
  targetPort: number,
  onFrame: (event: FrameEvent, held: Buffer[]) => FrameAction,
): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    pipeFrames(client, upstream, 'toServer', onFrame);
    pipeFrames(upstream, client, 'toClient', onFrame);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port };
}

function pipeFrames(from: Socket, to: Socket, direction: Direction, onFrame: (e: FrameEvent, held: Buffer[]) => FrameAction): void {
  const decoder = new FrameDecoder({ maxFrameBytes: 0xffffffff });
  const held: Buffer[] = [];
  let index = 0;
  let isCut = false;
  from.on('data', (chunk: Buffer) => {
    if (isCut) return;
    decoder.push(chunk);
    for (let body = decoder.next(); body !== undefined; body = decoder.next()) {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(body.length);
      const action = onFrame({ direction, index: index++, wire: Buffer.concat([header, body]) }, held);
      if (action === 'drop') continue;
      if (action === 'hold') {
        held.push(Buffer.concat([header, body]));
        continue;
      }
      if (Buffer.isBuffer(action)) to.write(action);
      else if (Array.isArray(action)) for (const b of action) to.write(b);
      else {
        isCut = true;
        to.end(action.cutAfter);
        from.destroy();
        return;
      }
    }
  });
  from.on('end', () => to.end());
  from.on('close', (hadError: boolean) => (hadError ? to.destroy() : to.end()));
}

export function flipByte(wire: Buffer, offset: number): Buffer {
  const copy = Buffer.from(wire);
  copy[offset] = (copy[offset] ?? 0) ^ 0x01;
  return copy;
}
