/**
 * `npm run bench:groups`: group chat over multicast (issue 7) on a simulated LAN.
 *
 * The script re-runs itself in a private network namespace (groups-netns.ts; it refuses, exit 2,
 * where it cannot) and builds a LAN there (test/harness/lan.ts): host 1 runs a real
 * RendezvousServer (mDNS off, cheap argon2), host 2 the sender and hosts 3… the receivers, each a
 * process of groups-member.ts with a real RendezvousClient login and a real GroupService on a
 * MulticastSocket pinned to its 10.x address. All members join one group. Then, after a warm-up:
 *   1. clean: the sender sends SALA_BENCH_GROUPS_RATE messages/s for SALA_BENCH_GROUPS_SECONDS;
 *   2. loss: the same with SALA_BENCH_GROUPS_LOSS % of the UDP frames to each receiver dropped
 *      by the kernel (a tc filter on the bridge side of its veth; in the receiver's socket, said
 *      so in the report, where tc cannot).
 * Per receiver: the share of messages whose own DATA datagram arrived (before repair) and the
 * share delivered at all (after repair), latency send → group.message on CLOCK_MONOTONIC, CPU over
 * the phase; the sender's CPU and RSS; the kernel's UDP receive-buffer drops.
 * Environment (all optional): SALA_BENCH_GROUPS_RECEIVERS (10), _RATE (1000), _SECONDS (10),
 * _WARMUP (500 messages), _LOSS (1, percent; 0 skips phase 2), _TEXT_BYTES (100), _TUNING (JSON
 * over the benchmark's GroupService tuning), _NODE_ARGS (node flags for the member processes).
 * Exit status: 0 whatever PASS/MISS says; 1 if a run broke; 2 for a bad variable or no namespace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JsonChild } from '../../common/process/index.js';
import { createLan, distScript, repoRoot, type Lan } from '../harness/lan.js';
import { BenchConfigError } from './config.js';
import { readGroupsBenchConfig, type GroupsBenchConfig } from './groups-config.js';
import { addUdpLoss, enterPrivateNamespace, isInnerStage, NamespaceRefusedError, removeUdpLoss, rerunInPrivateNamespace } from './groups-netns.js';
import { GROUPS_ANSWER, isRecord, type GroupsCommand, type ReceiveResult, type SendResult } from './groups-protocol.js';
import { groupsReport, type PhaseResult, type RunInfo } from './groups-report.js';
import { runBench } from './bench-main.js';

const MEMBER_SCRIPT = 'test/bench/groups-member.js';
const PASSWORD = 'bench groups password';
/** The whole run, namespace to report, is stopped after this. */
const RUN_DEADLINE_MS = 5 * 60_000;
/** Receivers wait this long after the last send for repairs (the repair timeout is 2 s). */
const DRAIN_MS = 4_000;
const COMMIT_ENV = 'SALA_BENCH_GROUPS_COMMIT';
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

interface Hosts {
  lan: Lan;
  server: JsonChild;
  sender: JsonChild;
  receivers: JsonChild[];
}

/** Sends a command and resolves with the fields of its answer. */
async function call(child: JsonChild, command: GroupsCommand, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  child.send(command);
  return child.waitForEvent(GROUPS_ANSWER[command.cmd], { timeoutMs });
}

async function resultOf<T>(child: JsonChild, command: GroupsCommand, timeoutMs: number): Promise<T> {
  const answer = await call(child, command, timeoutMs);
  if (!isRecord(answer['result'])) throw new Error(`${child.label} answered ${command.cmd} without a result`);
  // Our own member program answers; its result shapes are those of groups-protocol.ts.
  return answer['result'] as unknown as T;
}

/** The kernel's UDP counters in host `index` (per network namespace): RcvbufErrors is a full socket buffer. */
async function udpCounters(lan: Lan, index: number): Promise<Record<string, number>> {
  const lines = (await lan.exec(index, 'cat', ['/proc/net/snmp'])).split('\n').filter((line) => line.startsWith('Udp: '));
  const [names = [], values = []] = lines.map((line) => line.split(/\s+/).slice(1));
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}

async function startHosts(config: GroupsBenchConfig, workDir: string): Promise<Hosts> {
  const lan = await createLan(2 + config.receivers);
  const script = distScript(MEMBER_SCRIPT);
  const server = lan.spawn(0, [script, 'server', join(workDir, 'server'), lan.host(0).address], { label: 'server' });
  const listening = await server.waitForEvent('listening', { timeoutMs: 20_000 });
  const members = lan.hosts.slice(1).map((host, i) =>
    lan.spawn(host.index, [...config.memberNodeArgs, script, 'member'], { label: i === 0 ? 'sender' : `receiver ${i}@${host.address}` }),
  );
  const started = await Promise.all(
    members.map((child, i) =>
      call(child, {
        cmd: 'start',
        user: i === 0 ? 'sender' : `receiver${i}`,
        password: PASSWORD,
        server: { host: lan.host(0).address, port: Number(listening['port']), fingerprint: String(listening['fingerprint']) },
        interfaceAddress: lan.host(i + 1).address,
        tuning: config.tuning,
      }),
    ),
  );
  const silent = started.findIndex((answer) => answer['isMulticastWorking'] !== true);
  if (silent >= 0) throw new Error(`${members[silent]?.label ?? '?'}: the multicast self-test failed`);
  const epochs = await Promise.all(members.map((child) => call(child, { cmd: 'await-members', count: members.length })));
  if (new Set(epochs.map((answer) => answer['epoch'])).size !== 1) throw new Error('the members disagree on the group epoch');
  const [sender, ...receivers] = members;
  if (sender === undefined) throw new Error('no sender');
  return { lan, server, sender, receivers };
}

/** Turns loss on for every receiver: in the kernel if tc can, else in each receiver's socket. */
async function setLoss(hosts: Hosts, percent: number): Promise<PhaseResult['lossMode']> {
  const veths = hosts.lan.hosts.slice(2).map((host) => host.name);
  try {
    for (const veth of veths) await addUdpLoss(veth, percent / 100);
    return 'kernel';
  } catch (err) {
    for (const veth of veths) await removeUdpLoss(veth);
    progress(`  tc could not drop frames (${String(err).split('\n')[0] ?? ''}); dropping in the receivers' sockets instead`);
    await Promise.all(hosts.receivers.map((child) => call(child, { cmd: 'loss', probability: percent / 100 })));
    return 'socket';
  }
}

async function clearLoss(hosts: Hosts, mode: PhaseResult['lossMode']): Promise<void> {
  if (mode === 'kernel') for (const host of hosts.lan.hosts.slice(2)) await removeUdpLoss(host.name);
  if (mode === 'socket') await Promise.all(hosts.receivers.map((child) => call(child, { cmd: 'loss', probability: 0 })));
}

async function runPhase(hosts: Hosts, config: GroupsBenchConfig, spec: { label: string; firstIndex: number; count: number; lossPercent: number }): Promise<PhaseResult> {
  const { lan, sender, receivers } = hosts;
  const receiverIndexes = lan.hosts.slice(2).map((host) => host.index);
  const lossMode = spec.lossPercent > 0 ? await setLoss(hosts, spec.lossPercent) : 'none';
  try {
    const udpBefore = await Promise.all(receiverIndexes.map((index) => udpCounters(lan, index)));
    await Promise.all(receivers.map((child) => call(child, { cmd: 'phase-begin', firstIndex: spec.firstIndex, count: spec.count })));
    const sendMs = (spec.count / config.perSecond) * 1_000;
    const send = await resultOf<SendResult>(
      sender,
      { cmd: 'send', firstIndex: spec.firstIndex, count: spec.count, perSecond: config.perSecond, textBytes: config.textBytes },
      sendMs * 3 + 30_000,
    );
    const received = await Promise.all(receivers.map((child) => resultOf<ReceiveResult>(child, { cmd: 'phase-end', waitMs: DRAIN_MS }, DRAIN_MS + 30_000)));
    const udpAfter = await Promise.all(receiverIndexes.map((index) => udpCounters(lan, index)));
    const rcvbufErrors = udpAfter.map((after, i) => (after['RcvbufErrors'] ?? 0) - (udpBefore[i]?.['RcvbufErrors'] ?? 0));
    return { label: spec.label, lossPercent: spec.lossPercent, lossMode, send, received, rcvbufErrors };
  } finally {
    await clearLoss(hosts, lossMode);
  }
}

function commitOf(): string {
  const run = (args: string[]): string => spawnSync('git', args, { cwd: repoRoot(), encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = run(['rev-parse', '--short', 'HEAD']) || 'unknown';
  return run(['status', '--porcelain']) === '' ? head : `${head} + uncommitted changes`;
}

async function inner(): Promise<number> {
  let config: GroupsBenchConfig;
  try {
    config = readGroupsBenchConfig(process.env);
    await enterPrivateNamespace();
  } catch (err) {
    if (!(err instanceof BenchConfigError || err instanceof NamespaceRefusedError)) throw err;
    progress(`bench:groups: ${err.message}`);
    return 2;
  }
  const info: RunInfo = { startedAt: new Date(), loadAtStart: loadavg(), commit: process.env[COMMIT_ENV] ?? 'unknown' };
  const workDir = await mkdtemp(join(tmpdir(), 'sala-bench-groups-'));
  let hosts: Hosts | undefined;
  const phases: PhaseResult[] = [];
  const broken: string[] = [];
  try {
    progress(`bench:groups: ${config.receivers} receivers, ${config.perSecond} msg/s for ${config.seconds} s, loss phase ${config.lossPercent}%`);
    hosts = await startHosts(config, workDir);
    const count = config.perSecond * config.seconds;
    const specs = [
      { label: 'warm-up', firstIndex: 0, count: config.warmup, lossPercent: 0 },
      { label: 'clean', firstIndex: config.warmup, count, lossPercent: 0 },
      ...(config.lossPercent > 0 ? [{ label: `${config.lossPercent}% loss`, firstIndex: config.warmup + count, count, lossPercent: config.lossPercent }] : []),
    ];
    for (const spec of specs) {
      progress(`  ${spec.label}: ${spec.count} messages`);
      const phase = await runPhase(hosts, config, spec);
      if (spec.label !== 'warm-up') phases.push(phase);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    broken.push(message);
    progress(`bench:groups: BROKEN: ${message}`);
  } finally {
    if (hosts !== undefined) await Promise.all([hosts.sender, ...hosts.receivers, hosts.server].map((child) => child.stop(5_000)));
    await hosts?.lan.destroy();
    await rm(workDir, { recursive: true, force: true });
  }
  process.stdout.write(groupsReport(config, phases, { ...info, loadAtEnd: loadavg() }, broken));
  return broken.length > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  if (isInnerStage()) return inner();
  try {
    process.env[COMMIT_ENV] = commitOf();
    return await rerunInPrivateNamespace(fileURLToPath(import.meta.url), RUN_DEADLINE_MS);
  } catch (err) {
    if (!(err instanceof NamespaceRefusedError)) throw err;
    progress(`bench:groups: refusing to run: ${err.message}. It sends multicast, which must stay inside a private network namespace.`);
    return 2;
  }
}

runBench('bench:groups', main);
