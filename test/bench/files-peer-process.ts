/**
 * One side of `npm run bench:files` in its own process, as a user runs Sala: a Peer (or, for the
 * baseline, a plain TCP file copy), driven by the JSON lines of files-protocol.ts.
 *   node dist/test/bench/files-peer-process.js
 * It exits when its stdin ends, after closing its peer (no logout: the driver's server goes too).
 * The driver may also SIGKILL it mid-transfer (the resume case); nothing here needs to survive that.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Peer } from '../../peer/peer.js';
import {
  epochMs,
  FILES_EVENT_DONE,
  FILES_EVENT_FAILED,
  FILES_EVENT_PEER,
  isObject,
  type ConnectResult,
  type FilesCommand,
  type FilesCommandWithId,
  type MeterResult,
  type PeerEventLine,
  type RawSendResult,
  type SendFileResult,
} from './files-protocol.js';

/** The same read and write sizes as `npm run bench`'s raw file→file, and as a file chunk. */
const RAW_CHUNK_BYTES = 64 * 1024;
const RSS_SAMPLE_MS = 50;
const LINK_TIMEOUT_MS = 15_000;

const emit = (fields: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(fields)}\n`);
const forward = (line: PeerEventLine): void => emit({ event: FILES_EVENT_PEER, ...line });

/** RSS every 50 ms (each sample kept, for the median) and CPU time over one interval. */
class Meter {
  readonly #samples: number[] = [process.memoryUsage.rss()];
  readonly #cpuStart = process.cpuUsage();
  readonly #wallStart = performance.now();
  readonly #timer = setInterval(() => this.#samples.push(process.memoryUsage.rss()), RSS_SAMPLE_MS);

  constructor() {
    this.#timer.unref();
  }

  stop(): MeterResult {
    clearInterval(this.#timer);
    this.#samples.push(process.memoryUsage.rss());
    const cpu = process.cpuUsage(this.#cpuStart);
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: performance.now() - this.#wallStart,
      peakRssBytes: sorted[sorted.length - 1] ?? 0,
      medianRssBytes: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
      samples: sorted.length,
    };
  }
}

class FilesPeerProcess {
  #peer: Peer | undefined;
  #meter: Meter | undefined;
  readonly #servers = new Set<Server>();
  readonly #sockets = new Set<Socket>();
  #deliveredWaiter: ((id: string) => void) | undefined;

  async run(command: FilesCommand): Promise<unknown> {
    switch (command.cmd) {
      case 'connect':
        return this.#connect(command);
      case 'link':
        return this.#link(command.to);
      case 'chat-rtt':
        return { samplesMs: await this.#chatRoundTrips(command.to, command.count, command.intervalMs) };
      case 'send-file': {
        const peer = this.#requirePeer();
        const calledAt = epochMs();
        const { transferId } = await peer.sendFile(command.to, command.path);
        const result: SendFileResult = { transferId, calledAt, resolvedAt: epochMs() };
        return result;
      }
      case 'raw-listen':
        return { port: await this.#rawListen(command.path) };
      case 'raw-send':
        return this.#rawSend(command.port, command.path);
      case 'meter-start':
        this.#meter = new Meter();
        return {};
      case 'meter-stop': {
        const result = this.#meter?.stop();
        this.#meter = undefined;
        if (result === undefined) throw new Error('no meter is running');
        return result;
      }
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    for (const server of this.#servers) server.close();
    await this.#peer?.close();
  }

  #requirePeer(): Peer {
    if (this.#peer === undefined) throw new Error('not connected');
    return this.#peer;
  }

  async #connect(command: Extract<FilesCommand, { cmd: 'connect' }>): Promise<ConnectResult> {
    const peer = await Peer.connect({
      user: command.user,
      password: command.password,
      dataDir: command.dataDir,
      server: { host: '127.0.0.1', port: command.serverPort },
      serverKey: command.serverKey,
      isMdnsEnabled: false,
      listenHost: '127.0.0.1',
      downloadsDir: command.downloadsDir,
      isAutoAcceptFiles: true,
      ...(command.windowBytes === undefined ? {} : { tuning: { fileWindowBytes: command.windowBytes } }),
    });
    const readyAt = epochMs();
    this.#peer = peer;
    peer.on('file.progress', (p) => forward({ name: 'file.progress', at: epochMs(), ...p }));
    peer.on('file.received', (r) => forward({ name: 'file.received', at: epochMs(), ...r }));
    peer.on('file.sent', ({ transferId }) => forward({ name: 'file.sent', at: epochMs(), transferId }));
    peer.on('file.failed', (f) => forward({ name: 'file.failed', at: epochMs(), ...f }));
    peer.on('link.up', ({ user }) => forward({ name: 'link.up', at: epochMs(), user }));
    peer.on('link.down', ({ user, code }) => forward({ name: 'link.down', at: epochMs(), user, code: code ?? 'none' }));
    peer.on('warning', ({ code, message }) => forward({ name: 'warning', at: epochMs(), code, message }));
    peer.on('error', (err) => forward({ name: 'warning', at: epochMs(), code: err.code, message: err.message }));
    peer.on('delivered', ({ id }) => this.#deliveredWaiter?.(id));
    return { readyAt, rssBytes: process.memoryUsage.rss() };
  }

  /** A link before the measured sendFile, so that the dial is not part of the file's time. */
  async #link(to: string): Promise<object> {
    const peer = this.#requirePeer();
    const deadline = performance.now() + LINK_TIMEOUT_MS;
    while (!peer.peers().some((p) => p.user === to && p.online)) {
      if (performance.now() > deadline) throw new Error(`${to} did not come online`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.#sendAndWaitForAck(to, 'bench: link up');
    return {};
  }

  async #chatRoundTrips(to: string, count: number, intervalMs: number): Promise<number[]> {
    const samplesMs: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const startedAt = performance.now();
      await this.#sendAndWaitForAck(to, `bench: chat ${i}`);
      samplesMs.push(performance.now() - startedAt);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    return samplesMs;
  }

  /** Resolves when the message is acknowledged; the ack may arrive before send() resolves (once stored). */
  async #sendAndWaitForAck(to: string, text: string): Promise<void> {
    const peer = this.#requirePeer();
    const acked = new Set<string>();
    let onAck: (() => void) | undefined;
    this.#deliveredWaiter = (id) => {
      acked.add(id);
      onAck?.();
    };
    try {
      const { id } = await peer.send(to, text);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ack from ${to}`)), LINK_TIMEOUT_MS);
        onAck = () => {
          if (!acked.has(id)) return;
          clearTimeout(timer);
          resolve();
        };
        onAck();
      });
    } finally {
      this.#deliveredWaiter = undefined;
    }
  }

  /** The baseline's receiving end: socket → file stream, as `npm run bench`'s raw file→file does. */
  async #rawListen(path: string): Promise<number> {
    const server = createServer({ noDelay: true });
    this.#servers.add(server);
    server.once('connection', (socket) => {
      server.close();
      this.#servers.delete(server);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      // pipeline reports a failure; this only keeps a late reset from being an uncaught 'error'.
      socket.on('error', () => undefined);
      void pipeline(socket, createWriteStream(path, { highWaterMark: RAW_CHUNK_BYTES }))
        .then(async () => forward({ name: 'raw.received', at: epochMs(), bytes: (await stat(path)).size }))
        .catch((err: unknown) => forward({ name: 'warning', at: epochMs(), code: 'RAW_FAILED', message: String(err) }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the raw server has no port');
    return address.port;
  }

  async #rawSend(port: number, path: string): Promise<RawSendResult> {
    const startedAt = epochMs();
    const socket = createConnection({ host: '127.0.0.1', port, noDelay: true });
    socket.on('error', () => undefined); // the connect and the pipeline below report it
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    await once(socket, 'connect');
    await pipeline(createReadStream(path, { highWaterMark: RAW_CHUNK_BYTES }), socket);
    return { startedAt, finishedAt: epochMs() };
  }
}

function parseCommand(line: string): FilesCommandWithId {
  const value: unknown = JSON.parse(line);
  if (!isObject(value) || typeof value['id'] !== 'number' || typeof value['cmd'] !== 'string') throw new Error(`not a command: ${line.slice(0, 80)}`);
  // The driver is our own program (files.ts); the shape is checked there, by the compiler.
  return value as unknown as FilesCommandWithId;
}

function main(): void {
  const child = new FilesPeerProcess();
  // One command at a time, in order: the driver waits for each answer anyway.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let id = -1;
      try {
        const command = parseCommand(line);
        id = command.id;
        emit({ event: FILES_EVENT_DONE, id, result: await child.run(command) });
      } catch (err) {
        emit({ event: FILES_EVENT_FAILED, id, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      }
    });
  });
  lines.once('close', () => {
    void queue
      .then(() => child.close())
      .finally(() => process.exit(0));
  });
}

main();
