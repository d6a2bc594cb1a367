/**
 * The JSON lines between `groups.js` (the driver, in the benchmark's private network namespace)
 * and each `groups-member.js` (one process per simulated LAN host). The driver writes one command
 * per stdin line and waits for the event named in GROUPS_ANSWER; a member that fails prints
 * `error` (probe-io's runProbe) and exits, which fails the wait.
 */
import type { GroupTuning } from '../../peer/groups/group-service-options.js';
import type { ResourceUse } from './resources.js';

/** The one group every member joins. */
export const BENCH_GROUP = 'bench';

export type GroupsCommand =
  /** Registers, logs in with a RendezvousClient, starts a GroupService pinned to `interfaceAddress` and joins BENCH_GROUP. */
  | {
      cmd: 'start';
      user: string;
      password: string;
      server: { host: string; port: number; fingerprint: string };
      interfaceAddress: string;
      tuning: Partial<GroupTuning>;
    }
  /** Answers once the latest group.state lists `count` members. */
  | { cmd: 'await-members'; count: number }
  /** Receivers: starts counting messages firstIndex … firstIndex + count − 1, and the meter. */
  | { cmd: 'phase-begin'; firstIndex: number; count: number }
  /** The sender: `count` messages from `firstIndex` on, paced at `perSecond`, each `textBytes` long. */
  | { cmd: 'send'; firstIndex: number; count: number; perSecond: number; textBytes: number }
  /** Receivers: waits until every message of the phase is delivered or `waitMs` passes, then reports. */
  | { cmd: 'phase-end'; waitMs: number }
  /** Receivers, where the kernel cannot drop frames (see groups-netns.ts): the socket drops this share. */
  | { cmd: 'loss'; probability: number };

export const GROUPS_ANSWER: Readonly<Record<GroupsCommand['cmd'], string>> = Object.freeze({
  start: 'started',
  'await-members': 'members',
  'phase-begin': 'phase.begun',
  send: 'sent',
  'phase-end': 'phase.ended',
  loss: 'loss.set',
});

/** The GroupService counters the benchmark reads (a difference over one phase). */
export interface ServiceCounters {
  datagramsReceived: number;
  datagramsSent: number;
  nacksSent: number;
  repairsSent: number;
  repairsReceived: number;
  messagesDelivered: number;
  seqsLost: number;
  /** Datagrams the opener refused as over the member's rate (SALA_E_GROUP_RATE_LIMIT). */
  rateLimited: number;
}

export interface SendResult {
  sent: number;
  /** send() calls refused with SALA_E_RATE_LIMIT (each retried on the next tick). */
  refused: number;
  /** First send to last send. */
  seconds: number;
  /** Duration of each send() call (seal, sign, sendmsg), µs. */
  sendCallUs: number[];
  use: ResourceUse;
  counters: ServiceCounters;
}

export interface ReceiveResult {
  count: number;
  /** Messages of the phase delivered (group.message), each once. */
  delivered: number;
  /** Of those, the ones whose original DATA datagram reached the socket (the rest came by REPAIR). */
  viaData: number;
  /** Messages delivered twice, or outside the phase: both must stay 0. */
  duplicates: number;
  /** Send → group.message, µs, for every delivered message. */
  latencyUs: number[];
  /** For messages that came by their DATA datagram: send → the socket's 'datagram' event, and that → group.message. */
  toSocketUs: number[];
  inServiceUs: number[];
  /** Phase start until the last message was delivered (or the wait ended). */
  use: ResourceUse;
  counters: ServiceCounters;
  /** `warning` codes the service emitted during the phase, with counts. */
  warnings: Record<string, number>;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
