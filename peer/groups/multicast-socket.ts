import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { isIPv4 } from 'node:net';
import { SalaError } from '../../common/index.js';

/** The most bytes read from one datagram: anything longer is not ours (group datagrams are ≤ 1200). */
export const MAX_RECEIVED_DATAGRAM_BYTES = 1500;
/** The receive buffer asked for (see raiseReceiveBuffer). */
const RECEIVE_BUFFER_BYTES = 1024 * 1024;

export interface MulticastSocketOptions {
  port: number;
  /**
   * The LAN interface's IPv4 address. Memberships and outgoing multicast are pinned to it, never left
   * to the OS default: on a laptop with VPN, Hyper-V or WSL adapters the default is often the wrong
   * one (and on Windows a wrong choice fails silently).
   */
  interfaceAddress: string;
  /** 1 by default: group chat stays on the local network segment. */
  ttl?: number;
}

export interface MulticastSocketEvents {
  datagram: [bytes: Buffer, from: RemoteInfo];
  /** A transient problem (a send failed, a membership could not be added); the socket goes on. */
  warning: [error: SalaError];
}

/**
 * One UDP socket for all of a peer's groups: bound to the group port on all addresses (so datagrams
 * sent to any group address arrive), member of each group's address on the chosen interface only,
 * sending with TTL 1 through that interface, with loopback on so peers on the same machine (the
 * demo, a teacher's second window) hear each other.
 *
 * Membership is not a filter: on Linux (IP_MULTICAST_ALL, on by default) a socket bound to the port
 * receives datagrams for every group any socket of the machine joined. The group layer therefore
 * accepts a datagram only for a group it is in (the group id in the datagram's header).
 */
export class MulticastSocket extends EventEmitter<MulticastSocketEvents> {
  readonly #socket: Socket;
  readonly #options: MulticastSocketOptions;
  readonly #memberships = new Set<string>();
  #isClosed = false;

  private constructor(socket: Socket, options: MulticastSocketOptions) {
    super();
    this.#socket = socket;
    this.#options = options;
    socket.on('message', (bytes, from) => {
      if (bytes.length > MAX_RECEIVED_DATAGRAM_BYTES) return;
      this.emit('datagram', bytes, from);
    });
  }

  static async open(options: MulticastSocketOptions): Promise<MulticastSocket> {
    if (!isIPv4(options.interfaceAddress)) {
      throw new SalaError('SALA_E_CONFIG_INVALID', `Group chat needs the IPv4 address of the LAN interface, not "${options.interfaceAddress.slice(0, 40)}".`);
    }
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const opened = new MulticastSocket(socket, options);
    socket.on('error', (err) => opened.emit('warning', new SalaError('SALA_E_CONNECTION_FAILED', `Group socket: ${err.message}`, { cause: err })));
    socket.bind(options.port);
    try {
      await Promise.race([
        once(socket, 'listening'),
        once(socket, 'error').then(([err]) => {
          throw err;
        }),
      ]);
      socket.setMulticastInterface(options.interfaceAddress);
      socket.setMulticastTTL(options.ttl ?? 1);
      socket.setMulticastLoopback(true);
      raiseReceiveBuffer(socket);
    } catch (err) {
      socket.close();
      throw new SalaError('SALA_E_CONFIG_INVALID', `Cannot open the group socket on port ${options.port}: ${(err as Error).message}`, { cause: err });
    }
    return opened;
  }

  /** Joins a group address on the chosen interface (idempotent). */
  join(address: string): void {
    if (this.#memberships.has(address) || this.#isClosed) return;
    try {
      this.#socket.addMembership(address, this.#options.interfaceAddress);
      this.#memberships.add(address);
    } catch (err) {
      throw new SalaError('SALA_E_CONFIG_INVALID', `Cannot join the multicast group ${address} on ${this.#options.interfaceAddress}: ${(err as Error).message}`, { cause: err });
    }
  }

  leave(address: string): void {
    if (!this.#memberships.delete(address) || this.#isClosed) return;
    try {
      this.#socket.dropMembership(address, this.#options.interfaceAddress);
    } catch {
      // the interface went away; nothing to drop
    }
  }

  /** Sends one datagram to a group address; failures are warnings (UDP promises nothing anyway). */
  send(bytes: Uint8Array, address: string): void {
    if (this.#isClosed) return;
    this.#socket.send(bytes, this.#options.port, address, (err) => {
      if (err) this.emit('warning', new SalaError('SALA_E_CONNECTION_FAILED', `A group datagram could not be sent: ${err.message}`, { cause: err }));
    });
  }

  close(): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    this.#isClosed = true;
    for (const address of this.#memberships) {
      try {
        this.#socket.dropMembership(address, this.#options.interfaceAddress);
      } catch {
        // already gone
      }
    }
    this.#memberships.clear();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/**
 * Asks for a 1 MiB receive buffer: a burst from several senders (or a stalled event loop) must not
 * overflow the default (about 200 KiB on Linux, 64 KiB on Windows) and cost repairs. The OS may grant
 * less (Linux caps it at net.core.rmem_max); that is fine, the repair protocol covers the rest.
 */
function raiseReceiveBuffer(socket: Socket): void {
  try {
    if (socket.getRecvBufferSize() < RECEIVE_BUFFER_BYTES) socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
  } catch {
    // refused: the default buffer it is
  }
}
