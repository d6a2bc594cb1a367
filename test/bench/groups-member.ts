/**
 * One host of `npm run bench:groups`, run by the driver inside a simulated-LAN host namespace:
 *   node dist/test/bench/groups-member.js server DATA_DIR HOST_ADDRESS
 *     → listening { port, fingerprint }: a real RendezvousServer on HOST_ADDRESS, mDNS off, cheap argon2.
 *   node dist/test/bench/groups-member.js member
 *     → answers the commands of groups-protocol.ts: a real RendezvousClient login and a real
 *       GroupService on a MulticastSocket pinned to the host's LAN address.
 * Both exit when stdin ends. Times are CLOCK_MONOTONIC (process.hrtime), which every process on
 * the machine shares, so a receiver can subtract the sender's send time carried in the text.
 */
import {
  decodeGroupHeader,
  generateIdentity,
  GROUP_DATAGRAM_TYPE,
  initCrypto,
  SalaError,
} from '../../common/index.js';
import type { GroupServiceStats } from '../../peer/groups/group-service.js';
import { GroupService } from '../../peer/groups/group-service.js';
import { MulticastSocket } from '../../peer/groups/multicast-socket.js';
import { registerAccount, RendezvousClient } from '../../peer/rendezvous/rendezvous-client.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { argAt, emit, onStdinCommands, runProbe, UsageError, type Fields } from '../harness/probe-io.js';
import {
  BENCH_GROUP,
  GROUPS_ANSWER,
  type GroupsCommand,
  type ReceiveResult,
  type SendResult,
  type ServiceCounters,
} from './groups-protocol.js';
import { startResourceMeter, type ResourceUse } from './resources.js';

const nowNs = (): number => Number(process.hrtime.bigint());
const toUs = (ns: number): number => Math.round(ns / 100) / 10;

function counters(stats: GroupServiceStats): ServiceCounters {
  const { datagramsReceived, datagramsSent, nacksSent, repairsSent, repairsReceived, messagesDelivered, seqsLost } = stats;
  const rateLimited = stats.receive.rejected.SALA_E_GROUP_RATE_LIMIT;
  return { datagramsReceived, datagramsSent, nacksSent, repairsSent, repairsReceived, messagesDelivered, seqsLost, rateLimited };
}

function since(before: ServiceCounters, after: ServiceCounters): ServiceCounters {
  const diff = { ...after };
  for (const key of Object.keys(diff) as (keyof ServiceCounters)[]) diff[key] -= before[key];
  return diff;
}

/** "<index> <send time ns> xxx…": what the receivers parse; padded to the message size. */
function messageText(index: number, sentNs: number, textBytes: number): string {
  return `${index} ${sentNs} `.padEnd(textBytes, 'x');
}

/** One receiving phase: which messages came, how, and when. */
class Phase {
  readonly first: number;
  readonly count: number;
  /** When each message's DATA datagram reached the socket (ns; 0: it never did). */
  readonly arrivalNs: Float64Array;
  readonly isDelivered: Uint8Array;
  readonly latencyUs: number[] = [];
  readonly toSocketUs: number[] = [];
  readonly inServiceUs: number[] = [];
  readonly warnings: Record<string, number> = {};
  readonly before: ServiceCounters;
  delivered = 0;
  duplicates = 0;
  use: ResourceUse | undefined;
  readonly #meter = startResourceMeter();
  #onComplete: (() => void) | undefined;

  constructor(first: number, count: number, before: ServiceCounters) {
    this.first = first;
    this.count = count;
    this.before = before;
    this.arrivalNs = new Float64Array(count);
    this.isDelivered = new Uint8Array(count);
  }

  dataArrived(seq: number, atNs: number): void {
    const slot = seq - this.first;
    if (slot >= 0 && slot < this.count && this.arrivalNs[slot] === 0) this.arrivalNs[slot] = atNs;
  }

  onDelivered(text: string, atNs: number): void {
    const [indexText = '', sentText = ''] = text.split(' ', 2);
    const slot = Number(indexText) - this.first;
    if (!(slot >= 0 && slot < this.count) || this.isDelivered[slot] === 1) {
      this.duplicates += 1;
      return;
    }
    this.isDelivered[slot] = 1;
    this.delivered += 1;
    const sentNs = Number(sentText);
    this.latencyUs.push(toUs(atNs - sentNs));
    const arrivedNs = this.arrivalNs[slot] ?? 0;
    if (arrivedNs > 0) {
      this.toSocketUs.push(toUs(arrivedNs - sentNs));
      this.inServiceUs.push(toUs(atNs - arrivedNs));
    }
    if (this.delivered === this.count) this.#finish();
  }

  /** Resolves when every message is delivered, or after `waitMs`. */
  async settle(waitMs: number): Promise<void> {
    if (this.use === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.#onComplete = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#finish();
  }

  result(after: ServiceCounters): ReceiveResult {
    const viaData = this.arrivalNs.reduce((n, at) => (at > 0 ? n + 1 : n), 0);
    const { count, delivered, duplicates, latencyUs, toSocketUs, inServiceUs, warnings } = this;
    const use = this.use ?? this.#meter.stop();
    return { count, delivered, viaData, duplicates, latencyUs, toSocketUs, inServiceUs, use, counters: since(this.before, after), warnings };
  }

  #finish(): void {
    this.use ??= this.#meter.stop();
    this.#onComplete?.();
  }
}

class Member {
  #client: RendezvousClient | undefined;
  #service: GroupService | undefined;
  #members = 0;
  #epoch = -1;
  #onState: (() => void) | undefined;
  #phase: Phase | undefined;
  #lossProbability = 0;

  get service(): GroupService {
    if (this.#service === undefined) throw new UsageError('send "start" first');
    return this.#service;
  }

  async run(command: GroupsCommand): Promise<Fields> {
    switch (command.cmd) {
      case 'start':
        return this.#start(command);
      case 'await-members':
        return this.#awaitMembers(command.count);
      case 'phase-begin':
        this.#phase = new Phase(command.firstIndex, command.count, counters(this.service.stats));
        return {};
      case 'send':
        return { result: await this.#send(command) };
      case 'loss':
        this.#lossProbability = command.probability;
        return {};
      case 'phase-end': {
        const phase = this.#phase;
        if (phase === undefined) throw new UsageError('no phase began');
        await phase.settle(command.waitMs);
        this.#phase = undefined;
        return { result: phase.result(counters(this.service.stats)) };
      }
    }
  }

  async close(): Promise<void> {
    await this.#service?.close();
    await this.#client?.logout().catch(() => undefined);
  }

  async #start(command: Extract<GroupsCommand, { cmd: 'start' }>): Promise<Fields> {
    await initCrypto();
    const identity = generateIdentity();
    const server = { host: command.server.host, port: command.server.port, expectedFingerprint: command.server.fingerprint };
    await registerAccount({ ...server, user: command.user, password: command.password, identity });
    const client = new RendezvousClient({ ...server, user: command.user, identity });
    this.#client = client;
    client.on('error', (err) => {
      emit('error', { code: err.code, message: err.message });
      process.exit(1);
    });
    client.on('group.state', (state) => {
      this.#members = state.members.length;
      this.#epoch = state.epoch;
      this.#onState?.();
    });
    await client.login(command.password, { signal: AbortSignal.timeout(20_000) });
    const service = new GroupService({
      ...command.tuning,
      me: { user: command.user, get sessionId() { return client.sessionId ?? ''; }, signingKey: identity.signing.privateKey },
      rendezvous: client,
      openSocket: async (port) => {
        const socket = await MulticastSocket.open({ port, interfaceAddress: command.interfaceAddress });
        // The benchmark sees each datagram before the service does, and may drop it (the simulated
        // loss): this one socket's emit is wrapped, in this benchmark program only.
        const emitEvent = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => boolean;
        (socket as unknown as { emit: typeof emitEvent }).emit = (event, ...args) =>
          event === 'datagram' && args[0] instanceof Buffer && !this.#tap(args[0]) ? false : emitEvent(event, ...args);
        return socket;
      },
      serverNow: () => client.clock.now(),
    });
    this.#service = service;
    service.on('group.message', ({ text }) => this.#phase?.onDelivered(text, nowNs()));
    service.on('warning', (warning: SalaError) => {
      const warnings = this.#phase?.warnings;
      if (warnings !== undefined) warnings[warning.code] = (warnings[warning.code] ?? 0) + 1;
      emit('group.warning', { code: warning.code, message: warning.message });
    });
    await service.join(BENCH_GROUP, { signal: AbortSignal.timeout(20_000) });
    return { sessionId: client.sessionId ?? null, isMulticastWorking: service.isMulticastWorking(BENCH_GROUP) ?? false };
  }

  /** Notes when original DATA datagrams arrive (REPAIRs are another type); the sender's seqs are the message indexes. */
  #tap(bytes: Buffer): boolean {
    const atNs = nowNs();
    if (this.#lossProbability > 0 && Math.random() < this.#lossProbability) return false;
    const phase = this.#phase;
    if (phase === undefined || bytes[1] !== GROUP_DATAGRAM_TYPE.DATA) return true;
    try {
      phase.dataArrived(decodeGroupHeader(bytes).seq, atNs);
    } catch {
      // not a group datagram: the service warns about it
    }
    return true;
  }

  async #awaitMembers(count: number): Promise<Fields> {
    const deadline = AbortSignal.timeout(20_000);
    while (this.#members !== count) {
      if (deadline.aborted) throw new Error(`the group has ${this.#members} members, not ${count}`);
      await new Promise<void>((resolve) => {
        this.#onState = resolve;
        setTimeout(resolve, 100);
      });
    }
    this.#onState = undefined;
    return { epoch: this.#epoch };
  }

  async #send(command: Extract<GroupsCommand, { cmd: 'send' }>): Promise<SendResult> {
    const service = this.service;
    const before = counters(service.stats);
    const meter = startResourceMeter();
    const sendCallUs: number[] = [];
    let refused = 0;
    let next = 0;
    const startedMs = performance.now();
    let lastMs = startedMs;
    while (next < command.count) {
      // Everything due by now goes out; timers fire about every millisecond.
      const due = Math.min(command.count, Math.floor(((performance.now() - startedMs) * command.perSecond) / 1000) + 1);
      while (next < due) {
        const sentNs = nowNs();
        try {
          service.send(BENCH_GROUP, messageText(command.firstIndex + next, sentNs, command.textBytes));
        } catch (err) {
          if (!(err instanceof SalaError) || err.code !== 'SALA_E_RATE_LIMIT') throw err;
          refused += 1;
          break;
        }
        sendCallUs.push(toUs(nowNs() - sentNs));
        next += 1;
      }
      lastMs = performance.now();
      if (next < command.count) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const use = meter.stop();
    return { sent: next, refused, seconds: (lastMs - startedMs) / 1000, sendCallUs, use, counters: since(before, counters(service.stats)) };
  }
}

async function server(argv: readonly string[]): Promise<() => Promise<void>> {
  const rendezvous = await RendezvousServer.start({
    dataDir: argAt(argv, 0, 'dataDir'),
    host: argAt(argv, 1, 'hostAddress'),
    port: 0,
    adminPort: 0,
    isMdnsEnabled: false,
    passwordHashing: { opslimit: 1, memlimitBytes: 64 * 1024, workers: 1 },
  });
  emit('listening', { port: rendezvous.info.port, fingerprint: rendezvous.info.fingerprint });
  return () => rendezvous.close();
}

function member(): () => Promise<void> {
  const self = new Member();
  // One command at a time, in order: the driver waits for each answer anyway.
  let queue = Promise.resolve();
  onStdinCommands((fields) => {
    queue = queue.then(async () => {
      // The driver is our own program (groups.ts); the shape is checked there, by the compiler.
      const command = fields as unknown as GroupsCommand;
      const answer = GROUPS_ANSWER[command.cmd];
      if (answer === undefined) throw new UsageError(`unknown command ${String(fields['cmd'])}`);
      emit(answer, await self.run(command));
    });
    queue.catch((err: unknown) => {
      emit('error', { message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    });
  });
  return () => self.close();
}

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const cleanup = role === 'server' ? await server(roleArgs) : role === 'member' ? member() : undefined;
  if (cleanup === undefined) throw new UsageError(`unknown role "${role}"; expected server or member`);
  // Stdin closing is the portable "please stop" (JsonChild.stop()).
  process.stdin.on('end', () => {
    void Promise.resolve(cleanup()).finally(() => process.exit(0));
  });
  process.stdin.resume();
  return cleanup;
});
