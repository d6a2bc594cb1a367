/**
 * Test kit for the group service: a fake rendezvous that plays the server's side with the real
 * GroupRegistry (so states, epochs, keys and refusals are the server's own), members on real
 * MulticastSockets on 127.0.0.1, and waiting helpers. Multicast tests that use it must run inside
 * describeLan (the runner's private network namespace).
 */
import { createSocket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { onTestFinished } from 'vitest';
import {
  generateGroupInstance,
  generateSigningKeyPair,
  initCrypto,
  isSalaErrorCode,
  SalaError,
  type MessageOf,
  type WireMessage,
} from '../../../../common/index.js';
import { GroupService, type GroupServiceEvents } from '../../../../peer/groups/group-service.js';
import { laneInstances, type GroupMessageEvent } from '../../../../peer/groups/group-types.js';
import type { GroupServiceOptions, MulticastSocketLike } from '../../../../peer/groups/group-service-options.js';
import { MulticastSocket } from '../../../../peer/groups/multicast-socket.js';
import { GroupRegistry, type GroupLimits } from '../../../../rendezvous/groups.js';

export type GroupStateMessage = MessageOf<'group.state'>;

export async function freeUdpPort(): Promise<number> {
  const probe = createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface FakeRendezvousEvents {
  'group.state': [state: GroupStateMessage];
  'group.left': [group: string, error: SalaError | undefined];
}

/** One session's view of the fake server: the RendezvousClient surface the GroupService uses. */
export class FakeRendezvous extends EventEmitter<FakeRendezvousEvents> {
  readonly joins: string[] = [];
  readonly leaves: string[] = [];
  /** When set, group.state messages for this session are held here instead of delivered. */
  heldStates: GroupStateMessage[] | undefined;

  constructor(
    readonly server: FakeGroupServer,
    readonly user: string,
    readonly sessionId: string,
    readonly sigPk: Uint8Array,
  ) {
    super();
  }

  joinGroup(group: string): void {
    this.joins.push(group);
    this.server.join(this, group);
  }

  leaveGroup(group: string): void {
    this.leaves.push(group);
    this.server.leave(this, group);
  }

  /** What the server sent, delivered on a later turn as over a connection. */
  deliver(message: WireMessage): void {
    setImmediate(() => {
      if (message.type === 'group.state') {
        if (this.heldStates !== undefined) this.heldStates.push(message);
        else this.emit('group.state', message);
      } else if (message.type === 'group.left') {
        const error =
          message.code === undefined
            ? undefined
            : new SalaError(isSalaErrorCode(message.code) ? message.code : 'SALA_E_BUSY', message.message ?? 'refused');
        this.emit('group.left', message.group, error);
      }
    });
  }

  releaseHeldStates(): void {
    const held = this.heldStates ?? [];
    this.heldStates = undefined;
    for (const state of held) this.emit('group.state', state);
  }
}

/**
 * The server's side: the real GroupRegistry, with the group port rewritten to this test's own free
 * port (so concurrent test files never share one) and every state kept for the test to read keys.
 */
export class FakeGroupServer {
  registry: GroupRegistry;
  readonly port: number;
  /** Every state sent, per session id, in order. */
  readonly states = new Map<string, GroupStateMessage[]>();
  readonly #clients = new Map<string, FakeRendezvous>();

  readonly #limits: Partial<GroupLimits>;

  constructor(port: number, limits: Partial<GroupLimits> = {}) {
    this.port = port;
    this.#limits = limits;
    this.registry = new GroupRegistry((sessionId, message) => this.#send(sessionId, message), limits);
  }

  /** A server restart: every group is forgotten; clients join again as they resume. */
  restart(): void {
    this.registry = new GroupRegistry((sessionId, message) => this.#send(sessionId, message), this.#limits);
  }

  client(user: string, sessionId: string, sigPk: Uint8Array): FakeRendezvous {
    const client = new FakeRendezvous(this, user, sessionId, sigPk);
    this.#clients.set(sessionId, client);
    return client;
  }

  join(client: FakeRendezvous, group: string): void {
    try {
      this.registry.join(group, { sessionId: client.sessionId, user: client.user, sigPk: client.sigPk });
    } catch (err) {
      const error = err as SalaError;
      client.deliver({ type: 'group.left', group, code: error.code, message: error.message });
    }
  }

  leave(client: FakeRendezvous, group: string): void {
    this.registry.leave(group, client.sessionId);
  }

  /** The last state a session was sent for a group. */
  lastState(sessionId: string, group: string): GroupStateMessage {
    const state = (this.states.get(sessionId) ?? []).filter((s) => s.group === group).at(-1);
    if (state === undefined) throw new Error(`no state for ${sessionId} in ${group}`);
    return state;
  }

  #send(sessionId: string, message: WireMessage): void {
    let out = message;
    if (message.type === 'group.state') {
      const state: GroupStateMessage = { ...message, port: this.port };
      out = state;
      const list = this.states.get(sessionId) ?? [];
      list.push(state);
      this.states.set(sessionId, list);
    }
    this.#clients.get(sessionId)?.deliver(out);
  }
}

export interface Member {
  readonly user: string;
  readonly sessionId: string;
  readonly signingKey: Uint8Array;
  readonly sigPk: Uint8Array;
  readonly rendezvous: FakeRendezvous;
  readonly service: GroupService;
  readonly received: GroupMessageEvent[];
  readonly sent: { id: string; group: string; ref?: string }[];
  readonly warnings: SalaError[];
  readonly events: string[];
}

export type MemberOptions = Partial<Omit<GroupServiceOptions, 'me' | 'rendezvous'>>;

export async function openLoopbackSocket(port: number): Promise<MulticastSocketLike> {
  return MulticastSocket.open({ port, interfaceAddress: '127.0.0.1' });
}

/** A member with its own device key and session, on a real multicast socket at 127.0.0.1. */
export async function createMember(server: FakeGroupServer, user: string, options: MemberOptions = {}): Promise<Member> {
  await initCrypto();
  const keys = generateSigningKeyPair();
  const sessionId = `${user}-${Math.random().toString(36).slice(2, 10)}`;
  const rendezvous = server.client(user, sessionId, keys.publicKey);
  const service = new GroupService({
    me: { user, sessionId, signingKey: keys.privateKey },
    rendezvous,
    openSocket: openLoopbackSocket,
    serverNow: () => Date.now(),
    ...options,
  });
  onTestFinished(() => service.close());
  const member: Member = {
    user,
    sessionId,
    signingKey: keys.privateKey,
    sigPk: keys.publicKey,
    rendezvous,
    service,
    received: [],
    sent: [],
    warnings: [],
    events: [],
  };
  service.on('group.message', (message) => member.received.push(message));
  service.on('group.sent', (sent) => member.sent.push(sent));
  service.on('warning', (warning) => member.warnings.push(warning));
  service.on('group.joined', ({ group }) => member.events.push(`joined:${group}`));
  service.on('group.left', ({ group }) => member.events.push(`left:${group}`));
  return member;
}

/**
 * Resolves once `isDone()` holds, checking after every `event` of `emitter`; rejects after
 * `timeoutMs` with `description`. Event-driven: nothing polls or sleeps.
 */
export function waitUntil<K extends keyof GroupServiceEvents>(
  emitter: GroupService,
  event: K,
  isDone: () => boolean,
  description: string,
  timeoutMs = 5_000,
): Promise<void> {
  if (isDone()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (!isDone()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${description}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, check as never);
    };
    emitter.on(event, check as never);
  });
}

/** Waits until `member` has received at least `count` group messages. */
export function receivedAtLeast(member: Member, count: number, timeoutMs = 5_000): Promise<void> {
  return waitUntil(member.service, 'group.message', () => member.received.length >= count, `${member.user} to receive ${count} messages`, timeoutMs);
}

export function texts(member: Member, from?: string): string[] {
  return member.received.filter((m) => from === undefined || m.from === from).map((m) => m.text);
}

/** An opener that counts the sockets it opened and that have not finished closing. */
export function countingOpener(): { openSocket: (port: number) => Promise<MulticastSocketLike>; live: () => number; opened: () => number } {
  let opened = 0;
  let closed = 0;
  return {
    openSocket: async (port) => {
      const socket = await MulticastSocket.open({ port, interfaceAddress: '127.0.0.1' });
      opened += 1;
      const close = socket.close.bind(socket);
      let closing: Promise<void> | undefined;
      socket.close = () => {
        closing ??= close().then(() => {
          closed += 1;
        });
        return closing;
      };
      return socket;
    },
    live: () => opened - closed,
    opened: () => opened,
  };
}

/** A fresh data-lane instance (top bit 0), as a sender's DATA datagrams carry. */
export function dataLaneInstance(): Uint8Array {
  return laneInstances(generateGroupInstance()).data;
}

/** A fresh control-lane instance (top bit 1), as a sender's NACK and REPAIR datagrams carry. */
export function controlLaneInstance(): Uint8Array {
  return laneInstances(generateGroupInstance()).control;
}

/** Opens a raw socket on the group port, member of `address`: to capture or inject datagrams. */
export async function rawSocket(port: number, address: string): Promise<{ socket: MulticastSocket; captured: Buffer[] }> {
  const socket = await MulticastSocket.open({ port, interfaceAddress: '127.0.0.1' });
  onTestFinished(() => socket.close());
  socket.join(address);
  const captured: Buffer[] = [];
  socket.on('datagram', (bytes) => captured.push(Buffer.from(bytes)));
  return { socket, captured };
}

/** The first datagram (already captured or still to come) that matches, within `timeoutMs`. */
export function captured(raw: { socket: MulticastSocket; captured: Buffer[] }, matches: (bytes: Buffer) => boolean, timeoutMs = 5_000): Promise<Buffer[]> {
  const found = (): Buffer[] => raw.captured.filter(matches);
  if (found().length > 0) return Promise.resolve(found());
  return new Promise((resolve, reject) => {
    const onDatagram = (): void => {
      if (found().length === 0) return;
      clearTimeout(timer);
      raw.socket.off('datagram', onDatagram);
      // After the kit's own listener (registered first) has stored it.
      resolve(found());
    };
    const timer = setTimeout(() => {
      raw.socket.off('datagram', onDatagram);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a captured datagram`));
    }, timeoutMs);
    raw.socket.on('datagram', onDatagram);
  });
}

/**
 * A MulticastSocketLike that drops chosen incoming datagrams of a real socket. This is the one
 * mock in these tests, and it only simulates loss: loopback multicast in the namespace loses
 * nothing, and the repair path needs losses to exist.
 */
export class LossySocket implements MulticastSocketLike {
  readonly dropped: Buffer[] = [];
  readonly #inner: MulticastSocket;
  readonly #shouldDrop: (bytes: Buffer) => boolean;
  readonly #events = new EventEmitter();

  constructor(inner: MulticastSocket, shouldDrop: (bytes: Buffer) => boolean) {
    this.#inner = inner;
    this.#shouldDrop = shouldDrop;
    inner.on('datagram', (bytes) => {
      if (this.#shouldDrop(bytes)) this.dropped.push(Buffer.from(bytes));
      else this.#events.emit('datagram', bytes);
    });
    inner.on('warning', (error) => this.#events.emit('warning', error));
  }

  static opener(shouldDrop: (bytes: Buffer) => boolean, sink?: (socket: LossySocket) => void): (port: number) => Promise<MulticastSocketLike> {
    return async (port) => {
      const socket = new LossySocket(await MulticastSocket.open({ port, interfaceAddress: '127.0.0.1' }), shouldDrop);
      sink?.(socket);
      return socket;
    };
  }

  join(address: string): void {
    this.#inner.join(address);
  }

  leave(address: string): void {
    this.#inner.leave(address);
  }

  send(bytes: Uint8Array, address: string): void {
    this.#inner.send(bytes, address);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  on(event: 'datagram', listener: (bytes: Buffer) => void): this;
  on(event: 'warning', listener: (error: SalaError) => void): this;
  on(event: 'datagram' | 'warning', listener: ((bytes: Buffer) => void) | ((error: SalaError) => void)): this {
    this.#events.on(event, listener);
    return this;
  }
}

/** Resolves after the setImmediate callbacks queued so far (the fake server's deliveries) ran. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Datagram type byte (1 DATA, 2 NACK, 3 REPAIR) of a group datagram. */
export function datagramType(bytes: Uint8Array): number | undefined {
  return bytes[1];
}
