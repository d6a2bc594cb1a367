import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { generateStaticKeyPair, initCrypto, sodiumAead, type SecureChannel } from '../../../../common/crypto/index.js';
import { SalaError } from '../../../../common/errors.js';
import { flipByte, startFrameProxy } from '../../../helpers/frame-proxy.js';
import { dialSecure, listenSecure, nextData, nextError, securePair } from '../../../helpers/secure-pair.js';

beforeAll(initCrypto);

const FIRST_TRANSPORT_FRAME = 2; // per direction: the initiator sent msg 1 and msg 3 before it

async function expectCode(promise: Promise<unknown>, ...codes: string[]): Promise<SalaError> {
  const err = await promise.then(
    () => {
      throw new Error(`expected a SalaError with code ${codes.join(' or ')}, got success`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SalaError);
  expect(codes).toContain((err as SalaError).code);
  return err as SalaError;
}

/** Proves the listener still serves a fresh, honest client after another connection failed. */
async function expectStillServing(port: number, listener: Awaited<ReturnType<typeof listenSecure>>): Promise<void> {
  const client = await dialSecure(port);
  const result = await listener.nextResult();
  expect(result.status).toBe('fulfilled');
  const server = (result as PromiseFulfilledResult<SecureChannel>).value;
  client.write(Buffer.from('still here'));
  expect((await nextData(server)).toString()).toBe('still here');
  server.destroy();
}

describe('SecureChannel over loopback TCP', () => {
  it('carries messages both ways in order and exactly once', async () => {
    const { client, server } = await securePair();
    const received: string[] = [];
    server.on('data', (d: Buffer) => received.push(d.toString()));
    for (let i = 0; i < 200; i++) client.write(Buffer.from(`m${i}`));
    client.write(Buffer.from('last'));
    while (received.at(-1) !== 'last') await once(server, 'data');
    expect(received).toEqual([...Array.from({ length: 200 }, (_, i) => `m${i}`), 'last']);
    server.write(Buffer.from('reply'));
    expect((await nextData(client)).toString()).toBe('reply');
  });

  it('agrees on the handshake hash and reports each side the other\'s static key', async () => {
    const serverKey = generateStaticKeyPair();
    const clientKey = generateStaticKeyPair();
    const { client, server } = await securePair({ staticKeyPair: serverKey }, { staticKeyPair: clientKey });
    expect(Buffer.from(client.handshakeHash).equals(Buffer.from(server.handshakeHash))).toBe(true);
    expect(Buffer.from(client.remoteStatic).equals(Buffer.from(serverKey.publicKey))).toBe(true);
    expect(Buffer.from(server.remoteStatic).equals(Buffer.from(clientKey.publicKey))).toBe(true);
  });

  it('delivers handshake payloads to the verifier of the other side', async () => {
    const seen: string[] = [];
    await securePair(
      {
        payload: () => Buffer.from('from responder'),
        verifyRemote: ({ payload }) => void seen.push(`responder saw ${payload.toString()}`),
      },
      {
        payload: () => Buffer.from('from initiator'),
        verifyRemote: ({ payload }) => void seen.push(`initiator saw ${payload.toString()}`),
      },
    );
    expect(seen).toEqual(['initiator saw from responder', 'responder saw from initiator']);
  });

  it('carries a message of exactly maxPayloadBytes and refuses one byte more', async () => {
    const { client, server } = await securePair();
    const biggest = Buffer.alloc(client.maxPayloadBytes, 0xab);
    client.write(biggest);
    expect((await nextData(server)).equals(biggest)).toBe(true);
    const refused = new Promise<Error>((resolve) => client.write(Buffer.alloc(client.maxPayloadBytes + 1), (err) => resolve(err as Error)));
    client.on('error', () => undefined);
    const err = await refused;
    expect((err as SalaError).code).toBe('SALA_E_FRAME_TOO_LARGE');
  });

  it('delivers a message written as a list of parts as their concatenation, in order with single-buffer writes', async () => {
    const { client, server } = await securePair();
    const received: Buffer[] = [];
    server.on('data', (d: Buffer) => received.push(d));
    const big = randomBytes(64 * 1024);
    const expected = [Buffer.concat([Buffer.from('envelope'), big]), Buffer.from('single'), Buffer.from('one part'), Buffer.from('ab')];
    client.write([Buffer.from('envelope'), big]);
    // Corked: the queued writes reach the channel together (its _writev path).
    client.cork();
    client.write(Buffer.from('single'));
    client.write([Buffer.from('one part')]);
    client.write([Buffer.from('a'), Buffer.alloc(0), Buffer.from('b')]);
    client.uncork();
    await vi.waitFor(() => expect(received.length).toBe(expected.length));
    expect(received.map((b) => b.toString('hex'))).toEqual(expected.map((b) => b.toString('hex')));
  });

  it('refuses a list of parts whose total exceeds maxPayloadBytes with SALA_E_FRAME_TOO_LARGE', async () => {
    const { client } = await securePair();
    client.on('error', () => undefined);
    const half = Buffer.alloc(Math.ceil((client.maxPayloadBytes + 1) / 2));
    const err = await new Promise<Error>((resolve) => client.write([half, half], (e) => resolve(e as Error)));
    expect((err as SalaError).code).toBe('SALA_E_FRAME_TOO_LARGE');
  });

  it('refuses a list that holds something other than bytes with SALA_E_CONFIG_INVALID', async () => {
    const { client } = await securePair();
    client.on('error', () => undefined);
    const err = await new Promise<Error>((resolve) => client.write([Buffer.from('a'), 'text'], (e) => resolve(e as Error)));
    expect((err as SalaError).code).toBe('SALA_E_CONFIG_INVALID');
  });

  it('ends cleanly on both sides after the encrypted close', async () => {
    const { client, server } = await securePair();
    server.resume();
    client.resume();
    const serverEnded = once(server, 'end');
    const clientClosed = once(client, 'close');
    client.end();
    await serverEnded;
    await clientClosed;
    expect(client.errored).toBeNull();
    expect(server.errored).toBeNull();
  });

  it('keeps working across rekeys when both sides rekey on the same schedule', async () => {
    const { client, server } = await securePair({ rekeyIntervalFrames: 3 }, { rekeyIntervalFrames: 3 });
    for (let i = 0; i < 20; i++) {
      client.write(Buffer.from(`c${i}`));
      expect((await nextData(server)).toString()).toBe(`c${i}`);
      server.write(Buffer.from(`s${i}`));
      expect((await nextData(client)).toString()).toBe(`s${i}`);
    }
  });

  it('fails closed when the two sides rekey on different schedules (the rekey really changes the key)', async () => {
    const { client, server } = await securePair({ rekeyIntervalFrames: 1000 }, { rekeyIntervalFrames: 3 });
    const failed = nextError(server);
    for (let i = 0; i < 5; i++) client.write(Buffer.from(`c${i}`));
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('interoperates when one side uses libsodium and the other node:crypto for transport', async () => {
    const { client, server } = await securePair({ transportAead: sodiumAead }, {});
    client.write(Buffer.from('native to wasm'));
    expect((await nextData(server)).toString()).toBe('native to wasm');
    server.write(Buffer.from('wasm to native'));
    expect((await nextData(client)).toString()).toBe('wasm to native');
  });

  it('pauses the socket when the reader stops consuming and loses nothing on resume', async () => {
    const { client, server } = await securePair();
    server.pause();
    const chunk = Buffer.alloc(60_000, 1);
    let written = 0;
    while (client.write(chunk) && written < 1_000) written++;
    written++;
    // The writer saw backpressure instead of filling memory; now drain everything.
    let received = 0;
    server.on('data', () => received++);
    server.resume();
    while (received < written) await once(server, 'data');
    expect(received).toBe(written);
    expect(written).toBeLessThan(1_000);
  });
});

describe('SecureChannel end of stream under backpressure', () => {
  it('delivers every message and a clean end when the close arrives while the reader is paused', async () => {
    const listener = await listenSecure();
    const accepted = once(listener.server, 'connection') as Promise<[Socket]>;
    const client = await dialSecure(listener.port);
    const [socket] = await accepted;
    const result = await listener.nextResult();
    if (result.status === 'rejected') throw result.reason;
    const server = result.value;
    server.pause();
    client.cork();
    for (let i = 0; i < 40; i++) client.write(Buffer.alloc(1_000, i));
    client.end();
    client.resume();
    // A paused net.Socket still emits 'end' once its own buffer is empty, with frames (and the
    // CLOSE) still waiting in the channel's decoder.
    await once(socket, 'end', { signal: AbortSignal.timeout(2_000) });
    const received: number[] = [];
    server.on('data', (m: Buffer) => received.push(m[0] ?? -1));
    server.resume();
    await once(server, 'end', { signal: AbortSignal.timeout(2_000) });
    expect(received).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await once(client, 'close', { signal: AbortSignal.timeout(2_000) });
    expect(client.errored).toBeNull();
  });
});

describe('SecureChannel under attack (each failure closes only that connection)', () => {
  it('rejects a transport frame with a flipped bit with SALA_E_CHANNEL_DECRYPT_FAILED', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME + 1 ? flipByte(wire, 10) : wire,
    );
    const client = await dialSecure(proxy.port);
    const result = await listener.nextResult();
    const server = (result as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    client.write(Buffer.from('first, intact'));
    expect((await nextData(server)).toString()).toBe('first, intact');
    client.write(Buffer.from('second, tampered'));
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_DECRYPT_FAILED');
    await expectStillServing(listener.port, listener);
  });

  it('rejects a replayed transport frame', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME ? [wire, wire] : wire,
    );
    const client = await dialSecure(proxy.port);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    const first = nextData(server);
    client.write(Buffer.from('once'));
    expect((await first).toString()).toBe('once');
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_DECRYPT_FAILED');
    await expectStillServing(listener.port, listener);
  });

  it('rejects reordered transport frames without delivering the out-of-order one', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }, held) => {
      if (direction !== 'toServer') return wire;
      if (index === FIRST_TRANSPORT_FRAME) return 'hold';
      if (index === FIRST_TRANSPORT_FRAME + 1) return [wire, ...held.splice(0)];
      return wire;
    });
    const client = await dialSecure(proxy.port);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const delivered: string[] = [];
    server.on('data', (d: Buffer) => delivered.push(d.toString()));
    const failed = nextError(server);
    client.write(Buffer.from('one'));
    client.write(Buffer.from('two'));
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_DECRYPT_FAILED');
    expect(delivered).toEqual([]);
  });

  it('rejects a dropped transport frame (the next one fails authentication)', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME ? 'drop' : wire,
    );
    const client = await dialSecure(proxy.port);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    client.write(Buffer.from('lost'));
    client.write(Buffer.from('after the loss'));
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('reports SALA_E_CHANNEL_TRUNCATED when the connection is cut in the middle of a frame', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME + 1 ? { cutAfter: wire.subarray(0, 9) } : wire,
    );
    const client = await dialSecure(proxy.port);
    client.on('error', () => undefined);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    client.write(Buffer.from('whole'));
    expect((await nextData(server)).toString()).toBe('whole');
    client.write(Buffer.from('this one is cut'));
    const err = (await failed) as SalaError;
    expect(err.code).toBe('SALA_E_CHANNEL_TRUNCATED');
    expect(err.message).toMatch(/middle of a frame/);
  });

  it('reports SALA_E_CHANNEL_TRUNCATED when the connection ends between frames without the encrypted close', async () => {
    const listener = await listenSecure();
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME + 1 ? { cutAfter: Buffer.alloc(0) } : wire,
    );
    const client = await dialSecure(proxy.port);
    client.on('error', () => undefined);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    client.write(Buffer.from('whole'));
    expect((await nextData(server)).toString()).toBe('whole');
    client.write(Buffer.from('never arrives'));
    expect(((await failed) as SalaError).code).toBe('SALA_E_CHANNEL_TRUNCATED');
  });

  it('closes on a transport length prefix above maxFrameBytes without waiting for the body', async () => {
    const listener = await listenSecure();
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) =>
      direction === 'toServer' && index === FIRST_TRANSPORT_FRAME ? huge : wire,
    );
    const client = await dialSecure(proxy.port);
    const server = ((await listener.nextResult()) as PromiseFulfilledResult<SecureChannel>).value;
    const failed = nextError(server);
    client.write(Buffer.from('replaced by a 4 GiB header'));
    expect(((await failed) as SalaError).code).toBe('SALA_E_FRAME_TOO_LARGE');
    await expectStillServing(listener.port, listener);
  });

  it('refuses a responder whose static key is not the expected one, before sending msg 3', async () => {
    const listener = await listenSecure();
    const someoneElse = generateStaticKeyPair();
    await expectCode(dialSecure(listener.port, { expectedRemoteStatic: someoneElse.publicKey }), 'SALA_E_REMOTE_KEY_MISMATCH');
    const serverSide = await listener.nextResult();
    expect(serverSide.status).toBe('rejected');
    // The responder never got msg 3: it saw the connection close during the handshake.
    expect(((serverSide as PromiseRejectedResult).reason as SalaError).code).toBe('SALA_E_HANDSHAKE_FAILED');
  });

  it('accepts a responder whose static key is the expected one', async () => {
    const listener = await listenSecure();
    const client = await dialSecure(listener.port, { expectedRemoteStatic: listener.staticKeyPair.publicKey });
    expect(Buffer.from(client.remoteStatic).equals(Buffer.from(listener.staticKeyPair.publicKey))).toBe(true);
  });

  it('times out a client that connects and never speaks (SALA_E_HANDSHAKE_TIMEOUT)', async () => {
    const listener = await listenSecure({ handshakeTimeoutMs: 200 });
    const silent = connect({ host: '127.0.0.1', port: listener.port });
    silent.on('error', () => undefined);
    const closed = once(silent, 'close');
    const result = await listener.nextResult();
    expect(((result as PromiseRejectedResult).reason as SalaError).code).toBe('SALA_E_HANDSHAKE_TIMEOUT');
    await closed; // the server hung up on it
    await expectStillServing(listener.port, listener);
  });

  it('times out a slowloris client that trickles a byte at a time', async () => {
    const listener = await listenSecure({ handshakeTimeoutMs: 300 });
    const slow = connect({ host: '127.0.0.1', port: listener.port });
    slow.on('error', () => undefined);
    slow.write(Buffer.from([0, 0, 0, 32])); // a plausible first message header, then its body a byte at a time
    const trickle = setInterval(() => slow.write(Buffer.of(0)), 20);
    try {
      const result = await listener.nextResult();
      expect(((result as PromiseRejectedResult).reason as SalaError).code).toBe('SALA_E_HANDSHAKE_TIMEOUT');
    } finally {
      clearInterval(trickle);
      slow.destroy();
    }
  });

  it.each([
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a short frame of zeros', Buffer.from([0, 0, 0, 5, 0, 0, 0, 0, 0])],
    ['a 32-byte frame of zeros (a low-order X25519 point)', Buffer.concat([Buffer.from([0, 0, 0, 32]), Buffer.alloc(32)])],
    ['a first message with a payload', Buffer.concat([Buffer.from([0, 0, 0, 40]), Buffer.alloc(40, 9)])],
  ])('fails the handshake cleanly when the client sends %s instead of a handshake', async (_name, garbage) => {
    const listener = await listenSecure();
    const socket: Socket = connect({ host: '127.0.0.1', port: listener.port });
    socket.on('error', () => undefined);
    socket.write(garbage);
    const closed = once(socket, 'close');
    const result = await listener.nextResult();
    expect(result.status).toBe('rejected');
    expect(((result as PromiseRejectedResult).reason as SalaError).code).toBe('SALA_E_HANDSHAKE_FAILED');
    await closed;
    await expectStillServing(listener.port, listener);
  });

  it('fails the initiator cleanly when a server answers with garbage', async () => {
    const { createServer } = await import('node:net');
    const liar = createServer((s) => {
      s.on('error', () => undefined);
      s.end(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    try {
      const port = (liar.address() as { port: number }).port;
      await expectCode(dialSecure(port), 'SALA_E_HANDSHAKE_FAILED');
    } finally {
      liar.close();
    }
  });

  it('fails with SALA_E_HANDSHAKE_FAILED when the two sides speak different protocol purposes', async () => {
    const listener = await listenSecure({ purpose: 'link' });
    await expectCode(dialSecure(listener.port, { purpose: 'rdv' }), 'SALA_E_HANDSHAKE_FAILED');
    const result = await listener.nextResult();
    expect(result.status).toBe('rejected');
  });

  it('passes a SalaError thrown by verifyRemote through unchanged and closes the connection', async () => {
    const listener = await listenSecure();
    const refusal = new SalaError('SALA_E_REMOTE_KEY_MISMATCH', 'not the server we pinned');
    const err = await expectCode(
      dialSecure(listener.port, { verifyRemote: () => Promise.reject(refusal) }),
      'SALA_E_REMOTE_KEY_MISMATCH',
    );
    expect(err).toBe(refusal);
  });

  it('aborts a handshake when its AbortSignal fires', async () => {
    const listener = await listenSecure();
    const controller = new AbortController();
    const pending = dialSecure(listener.port, {
      signal: controller.signal,
      verifyRemote: () => new Promise<void>(() => controller.abort()),
    });
    await expectCode(pending, 'SALA_E_ABORTED');
  });

  it('refuses to connect to a port where nothing listens with SALA_E_CONNECTION_FAILED', async () => {
    const listener = await listenSecure();
    const port = listener.port;
    await new Promise<void>((r) => listener.server.close(() => r()));
    await expectCode(dialSecure(port), 'SALA_E_CONNECTION_FAILED');
  });
});
