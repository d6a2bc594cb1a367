import type { Logger, SalaError } from '../../common/index.js';
import type { MulticastSocketLike } from './group-service-options.js';

export interface SharedSocketOptions {
  openSocket: (port: number) => Promise<MulticastSocketLike>;
  onDatagram: (bytes: Uint8Array) => void;
  onWarning: (error: SalaError) => void;
  selfTestTimeoutMs: number;
  log: Logger;
}

interface Probe {
  readonly groupIdHex: string;
  readonly seq: number;
  readonly resolve: (isBack: boolean) => void;
}

/**
 * The one multicast socket all of a peer's groups share: opened on first use at the group port,
 * a membership per group address, closed when no group needs it, and the join self-test (a probe
 * multicast, and our own copy back through loopback within selfTestTimeoutMs).
 */
export class SharedSocket {
  readonly #options: SharedSocketOptions;
  readonly #probes = new Set<Probe>();
  #socket: MulticastSocketLike | undefined;
  #port: number | undefined;
  #opening: Promise<MulticastSocketLike | undefined> | undefined;
  #closing: Promise<void> | undefined;
  #isClosed = false;

  constructor(options: SharedSocketOptions) {
    this.#options = options;
  }

  /** The open socket, if any. */
  get current(): MulticastSocketLike | undefined {
    return this.#socket;
  }

  /** The socket at `port`, opening it if needed; undefined if it cannot be opened or is open at another port. */
  async acquire(port: number): Promise<MulticastSocketLike | undefined> {
    if (this.#closing !== undefined) await this.#closing;
    if (this.#isClosed) return undefined;
    if (this.#socket !== undefined || this.#opening !== undefined) {
      const socket = this.#socket ?? (await this.#opening);
      if (socket !== undefined && this.#port !== port) {
        this.#options.log.warn('group.port_mismatch', { port, socketPort: this.#port });
        return undefined;
      }
      return socket;
    }
    this.#opening = this.#open(port);
    try {
      return await this.#opening;
    } finally {
      this.#opening = undefined;
    }
  }

  /** Closes the socket (in the background) if nothing needs it; a later acquire() waits for that. */
  release(): void {
    const socket = this.#socket;
    if (socket === undefined || this.#isClosed) return;
    this.#socket = undefined;
    this.#port = undefined;
    this.#closing = socket.close().finally(() => {
      this.#closing = undefined;
    });
  }

  /**
   * Multicasts `probe` to `address` and waits for our own copy: true if it came back within the
   * timeout. The caller routes our own datagrams to probeBack().
   */
  async selfTest(socket: MulticastSocketLike, address: string, groupIdHex: string, probe: { datagram: Uint8Array; seq: number }): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let entry: Probe | undefined;
    const isBack = new Promise<boolean>((resolve) => {
      entry = { groupIdHex, seq: probe.seq, resolve };
      timer = setTimeout(() => resolve(false), this.#options.selfTestTimeoutMs);
      timer.unref();
    });
    if (entry !== undefined) this.#probes.add(entry);
    try {
      socket.send(probe.datagram, address);
      return await isBack;
    } finally {
      clearTimeout(timer);
      if (entry !== undefined) this.#probes.delete(entry);
    }
  }

  /** One of our own control-lane datagrams came back: the probe it may be. */
  probeBack(groupIdHex: string, seq: number): void {
    for (const probe of this.#probes) if (probe.groupIdHex === groupIdHex && probe.seq === seq) probe.resolve(true);
  }

  /** Closes for good: running self-tests fail, the socket (also one still opening) is closed. */
  async close(): Promise<void> {
    this.#isClosed = true;
    for (const probe of this.#probes) probe.resolve(false);
    this.#probes.clear();
    if (this.#opening !== undefined) await this.#opening; // #open closes it, seeing we are closed
    await this.#closing;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) await socket.close();
  }

  async #open(port: number): Promise<MulticastSocketLike | undefined> {
    let socket: MulticastSocketLike;
    try {
      socket = await this.#options.openSocket(port);
    } catch (err) {
      this.#options.log.warn('group.socket_failed', { port, message: String(err) });
      return undefined;
    }
    if (this.#isClosed) {
      await socket.close();
      return undefined;
    }
    socket.on('datagram', (bytes) => this.#options.onDatagram(bytes));
    socket.on('warning', (error) => this.#options.onWarning(error));
    this.#socket = socket;
    this.#port = port;
    return socket;
  }
}
