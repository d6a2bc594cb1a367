/**
 * One Sala peer in its own process, for `npm run bench:chat`: each peer is its own program, as it
 * is for users, so no event loop does both sides of a round trip. `chat.js` starts two of these and
 * drives them with the JSON lines of chat-protocol.ts; every timing is taken in here (the sender's
 * `performance.now()`), so the driver's pipes are never inside a measured interval.
 *   node dist/test/bench/chat-peer-process.js
 * It exits when its stdin ends, after closing its peer (no logout: the driver's server goes too).
 */
import type { Server } from 'node:net';
import { createInterface } from 'node:readline';
import { MessageChannel } from '../../common/index.js';
import { Peer } from '../../peer/peer.js';
import { listenRawEcho, rawPing } from './chat-raw.js';
import { textOf, Wakeup } from './chat-wakeup.js';
import {
  CHAT_EVENT_DONE,
  CHAT_EVENT_FAILED,
  isObject,
  type ChatCommand,
  type ChatCommandWithId,
  type FloodResult,
  type PeerStats,
  type RttResult,
} from './chat-protocol.js';
import { startResourceMeter, type ResourceUse } from './resources.js';

/**
 * Chat and ack frames as they arrive on any link of this process, redeliveries included: the Peer
 * API shows each message once, and this shows how many frames carried it. Counted by wrapping
 * MessageChannel's emit of 'inbound' (every valid frame), in this benchmark program only.
 */
const inboundFrames = { chat: 0, ack: 0 };
const channelPrototype = MessageChannel.prototype as unknown as { emit: (event: string, ...args: unknown[]) => boolean };
const originalEmit = channelPrototype.emit;
channelPrototype.emit = function countingEmit(this: unknown, event: string, ...args: unknown[]): boolean {
  if (event === 'inbound') {
    const type: unknown = isObject(args[0]) ? args[0]['type'] : undefined;
    if (type === 'chat') inboundFrames.chat += 1;
    else if (type === 'chat.ack') inboundFrames.ack += 1;
  }
  return originalEmit.call(this, event, ...args);
};

const emit = (fields: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(fields)}\n`);

class PeerProcess {
  #peer: Peer | undefined;
  #rawServer: Server | undefined;
  #meter: { stop(): ResourceUse } | undefined;
  #isEcho = false;
  readonly #wakeup = new Wakeup();
  readonly #stats = { received: 0, delivered: 0, linkDowns: [] as string[], serverDisconnects: 0, warnings: [] as string[] };
  /** Acks that arrived before the send() that made them resolved (the ack can beat the store). */
  readonly #earlyAcks = new Set<string>();
  readonly #ackWaiters = new Map<string, () => void>();
  readonly #replyWaiters = new Map<string, () => void>();

  get peer(): Peer {
    if (this.#peer === undefined) throw new Error('not connected');
    return this.#peer;
  }

  async run(command: ChatCommand): Promise<unknown> {
    switch (command.cmd) {
      case 'connect':
        return this.#connect(command);
      case 'link':
        return this.#link(command.to);
      case 'raw-listen': {
        const { port, server } = await listenRawEcho();
        this.#rawServer = server;
        return { port };
      }
      case 'raw-ping':
        return { samplesUs: await rawPing(command.port, command.pings, command.warmup, command.bytes, AbortSignal.timeout(60_000 + command.pings * 10)) };
      case 'echo':
        this.#isEcho = command.isOn;
        return {};
      case 'rtt':
        return this.#rtt(command);
      case 'flood':
        return this.#flood(command);
      case 'meter-start':
        this.#meter = startResourceMeter();
        return {};
      case 'meter-stop': {
        const use = this.#meter?.stop();
        this.#meter = undefined;
        if (use === undefined) throw new Error('no meter running');
        return use;
      }
      case 'stats': {
        const { rss, heapUsed } = process.memoryUsage();
        const stats: PeerStats = { rssBytes: rss, heapUsedBytes: heapUsed, chatFramesIn: inboundFrames.chat, ackFramesIn: inboundFrames.ack, ...this.#stats };
        return stats;
      }
    }
  }

  async close(): Promise<void> {
    this.#rawServer?.close();
    await this.#peer?.close();
  }

  async #connect(command: Extract<ChatCommand, { cmd: 'connect' }>): Promise<unknown> {
    const peer = await Peer.connect({
      user: command.user,
      password: command.password,
      dataDir: command.dataDir,
      server: { host: '127.0.0.1', port: command.serverPort },
      serverKey: command.serverKey,
      isMdnsEnabled: false,
      listenHost: '127.0.0.1',
      tuning: command.limits,
    });
    this.#peer = peer;
    peer.on('delivered', ({ id }) => {
      this.#stats.delivered += 1;
      const waiter = this.#ackWaiters.get(id);
      if (waiter === undefined) this.#earlyAcks.add(id);
      else {
        this.#ackWaiters.delete(id);
        waiter();
      }
      this.#wakeup.nudge();
    });
    peer.on('message', ({ from, text }) => {
      this.#stats.received += 1;
      if (this.#isEcho) {
        peer.send(from, text).catch((err: unknown) => this.#stats.warnings.push(`echo: ${String(err)}`));
        return;
      }
      const waiter = this.#replyWaiters.get(text);
      if (waiter !== undefined) {
        this.#replyWaiters.delete(text);
        waiter();
      }
    });
    peer.on('link.down', ({ code }) => {
      this.#stats.linkDowns.push(code ?? 'none');
      this.#wakeup.nudge();
    });
    peer.on('server.disconnected', () => void (this.#stats.serverDisconnects += 1));
    peer.on('warning', ({ code }) => void this.#stats.warnings.push(code));
    peer.on('error', (err) => void this.#stats.warnings.push(`error ${err.code}`));
    return { rssBytes: process.memoryUsage.rss() };
  }

  async #link(to: string): Promise<unknown> {
    const peer = this.peer;
    const deadline = performance.now() + 10_000;
    while (!peer.peers().some((p) => p.user === to && p.online)) {
      if (performance.now() > deadline) throw new Error(`${to} did not come online`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.#sendAndWaitForAck(to, textOf('link', 16), AbortSignal.timeout(10_000));
    return {};
  }

  /** Resolves when the message is acknowledged (stored by the recipient). */
  async #sendAndWaitForAck(to: string, text: string, signal: AbortSignal): Promise<void> {
    const { id } = await this.peer.send(to, text);
    if (this.#earlyAcks.delete(id)) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#ackWaiters.delete(id);
        reject(new Error(`no ack for message ${id}`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#ackWaiters.set(id, () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  async #sendAndWaitForReply(to: string, text: string, signal: AbortSignal): Promise<void> {
    const replied = new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#replyWaiters.delete(text);
        reject(new Error('no reply'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#replyWaiters.set(text, () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    await this.peer.send(to, text);
    await replied;
  }

  async #rtt(command: Extract<ChatCommand, { cmd: 'rtt' }>): Promise<RttResult> {
    const total = command.warmup + command.count;
    const signal = AbortSignal.timeout(60_000 + total * 20);
    const samplesUs: number[] = [];
    for (let i = 0; i < total; i += 1) {
      const text = textOf(`${command.mode} ${i}`, command.textBytes);
      const startedAt = performance.now();
      if (command.mode === 'ack') await this.#sendAndWaitForAck(command.to, text, signal);
      else await this.#sendAndWaitForReply(command.to, text, signal);
      if (i >= command.warmup) samplesUs.push((performance.now() - startedAt) * 1000);
    }
    return { samplesUs };
  }

  async #flood(command: Extract<ChatCommand, { cmd: 'flood' }>): Promise<FloodResult> {
    const peer = this.peer;
    const deliveredBefore = this.#stats.delivered;
    const downsBefore = this.#stats.linkDowns.length;
    const delivered = (): number => this.#stats.delivered - deliveredBefore;
    let sent = 0;
    let failure: unknown;
    let firstLinkDownSeconds: number | undefined;
    let deliveredAtFirstLinkDown: number | undefined;
    const startedAt = performance.now();
    const deadline = startedAt + command.timeoutMs;
    while (delivered() < command.count && failure === undefined) {
      const nowMs = performance.now();
      if (nowMs > deadline) break;
      if (firstLinkDownSeconds === undefined && this.#stats.linkDowns.length > downsBefore) {
        firstLinkDownSeconds = (nowMs - startedAt) / 1000;
        deliveredAtFirstLinkDown = delivered();
      }
      let nextSlotMs = nowMs;
      while (sent < command.count && sent - delivered() < command.inFlight) {
        if (command.perSecond !== undefined) {
          nextSlotMs = startedAt + (sent / command.perSecond) * 1000;
          if (nextSlotMs > performance.now()) break;
        }
        sent += 1;
        peer.send(command.to, textOf(`flood ${sent}`, command.textBytes)).catch((err: unknown) => {
          failure = err;
        });
      }
      const waitMs = command.perSecond !== undefined && nextSlotMs > nowMs ? nextSlotMs - performance.now() : deadline - performance.now();
      await this.#wakeup.wait(Math.min(waitMs, 1_000));
    }
    if (failure !== undefined) throw failure;
    return { sent, delivered: delivered(), seconds: (performance.now() - startedAt) / 1000, firstLinkDownSeconds, deliveredAtFirstLinkDown };
  }
}

function parseCommand(line: string): ChatCommandWithId {
  const value: unknown = JSON.parse(line);
  if (!isObject(value) || typeof value['id'] !== 'number' || typeof value['cmd'] !== 'string') throw new Error(`not a command: ${line.slice(0, 80)}`);
  // The driver is our own program (chat.ts); the shape is checked there, by the compiler.
  return value as unknown as ChatCommandWithId;
}

function main(): void {
  const process_ = new PeerProcess();
  // One command at a time, in order: the driver waits for each answer anyway.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let id = -1;
      try {
        const command = parseCommand(line);
        id = command.id;
        const result = await process_.run(command);
        emit({ event: CHAT_EVENT_DONE, id, result });
      } catch (err) {
        emit({ event: CHAT_EVENT_FAILED, id, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      }
    });
  });
  lines.on('close', () => {
    void queue
      .then(() => process_.close())
      .finally(() => process.exit(0));
  });
}

main();
