import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../../../common/crypto/index.js';
import { SalaError } from '../../../../common/errors.js';
import { MAX_QUEUED_MESSAGES, MessageChannel } from '../../../../common/net/message-channel.js';
import { packMessage } from '../../../../common/wire/msgpack.js';
import type { WireMessage } from '../../../../common/wire/messages.js';
import { securePair } from '../../../helpers/secure-pair.js';

beforeAll(initCrypto);

async function messagePair(): Promise<{ a: MessageChannel; b: MessageChannel }> {
  const { client, server } = await securePair();
  return { a: new MessageChannel(client), b: new MessageChannel(server) };
}

describe('MessageChannel', () => {
  it('answers a ping automatically and reports the round trip with the echoed data', async () => {
    const { a } = await messagePair();
    const result = await a.ping(Buffer.from('echo me'), { signal: AbortSignal.timeout(2_000) });
    expect(Buffer.from(result.data ?? []).toString()).toBe('echo me');
    expect(result.rttMs).toBeGreaterThan(0);
  });

  it('delivers validated messages that are not pings as message events', async () => {
    const { a, b } = await messagePair();
    const got = once(b, 'message', { signal: AbortSignal.timeout(2_000) }) as Promise<[WireMessage]>;
    a.send({ type: 'error', code: 'SALA_E_ABORTED', message: 'just a test' });
    const [message] = await got;
    expect(message).toEqual({ type: 'error', code: 'SALA_E_ABORTED', message: 'just a test' });
  });

  it('ends the channel with SALA_E_PROTOCOL_UNKNOWN_TYPE and tells the sender why', async () => {
    const { a, b } = await messagePair();
    const failed = once(b, 'error', { signal: AbortSignal.timeout(2_000) }) as Promise<[SalaError]>;
    const told = once(a, 'message', { signal: AbortSignal.timeout(2_000) }) as Promise<[WireMessage]>;
    a.channel.write(packMessage({ type: 'teleport', to: 'mars' }));
    const [err] = await failed;
    expect(err.code).toBe('SALA_E_PROTOCOL_UNKNOWN_TYPE');
    const [reply] = await told;
    expect(reply).toMatchObject({ type: 'error', code: 'SALA_E_PROTOCOL_UNKNOWN_TYPE' });
  });

  it('ends the channel with SALA_E_PROTOCOL_INVALID_FIELD on a message with a wrong field', async () => {
    const { a, b } = await messagePair();
    const failed = once(b, 'error', { signal: AbortSignal.timeout(2_000) }) as Promise<[SalaError]>;
    a.channel.write(packMessage({ type: 'ping', id: -1 }));
    const [err] = await failed;
    expect(err.code).toBe('SALA_E_PROTOCOL_INVALID_FIELD');
    expect(err.message).toContain('ping.id');
  });

  it('ends the channel with SALA_E_PROTOCOL_MALFORMED on bytes that are not MessagePack', async () => {
    const { a, b } = await messagePair();
    const failed = once(b, 'error', { signal: AbortSignal.timeout(2_000) }) as Promise<[SalaError]>;
    a.channel.write(Buffer.from([0xc1, 0xc1, 0xc1]));
    const [err] = await failed;
    expect(err.code).toBe('SALA_E_PROTOCOL_MALFORMED');
  });

  it('rejects pending pings with SALA_E_CHANNEL_CLOSED when the connection goes away', async () => {
    const { a, b } = await messagePair();
    b.channel.pause(); // b will never answer
    const pending = a.ping();
    b.destroy();
    await expect(pending).rejects.toMatchObject({ code: expect.stringMatching(/^SALA_E_(CHANNEL_CLOSED|CHANNEL_TRUNCATED|CONNECTION_FAILED)$/) });
  });

  it('refuses to send on a closed channel with SALA_E_CHANNEL_CLOSED', async () => {
    const { a } = await messagePair();
    await a.close();
    expect(() => a.send({ type: 'ping', id: 1 })).toThrow(expect.objectContaining({ code: 'SALA_E_CHANNEL_CLOSED' }));
  });

  it('closes gracefully on both ends', async () => {
    const { a, b } = await messagePair();
    b.channel.resume();
    const bClosed = once(b, 'close');
    await a.close();
    await bClosed;
    expect(a.isClosed).toBe(true);
    expect(b.isClosed).toBe(true);
  });

  it('cancels a ping with its AbortSignal', async () => {
    const { a, b } = await messagePair();
    b.channel.pause();
    const controller = new AbortController();
    const pending = a.ping(undefined, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'SALA_E_ABORTED' });
  });

  it('disconnects a peer that stops reading instead of queueing without bound (SALA_E_RATE_LIMIT)', async () => {
    const { a, b } = await messagePair();
    b.channel.pause(); // b reads nothing more
    a.on('error', () => undefined);
    let refusal: unknown;
    // 64 KiB messages: enough to fill the kernel's socket buffers, then our own queue.
    const events = Array.from({ length: 256 }, (_, i) => ({ id: `e${i}`, at: 1, event: 'message.sent', detail: 'x'.repeat(250) }));
    try {
      for (let i = 0; i < 2_000; i++) a.send({ type: 'log.batch', events });
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'SALA_E_RATE_LIMIT' });
    expect(a.channel.destroyed).toBe(true);
  });

  it('does not answer pings while its own write queue is backed up', async () => {
    const { a, b } = await messagePair();
    // a stops reading; b pings a lot: a answers until its queue needs draining, then stays silent.
    a.channel.pause();
    b.channel.pause();
    for (let i = 0; i < 50; i++) void b.ping(undefined).catch(() => undefined);
    expect(a.channel.writableLength).toBeLessThanOrEqual(MAX_QUEUED_MESSAGES);
  });
});
