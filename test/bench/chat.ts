/**
 * `npm run bench:chat`: 1:1 chat between two Sala peers (issue 5), against raw TCP in the same run.
 *
 * This process runs a real RendezvousServer (cheap argon2, mDNS off, 127.0.0.1) and drives pairs
 * of peer processes (chat-peer-process.ts), each one `Peer` as a user runs it, so no event loop
 * does both sides of a round trip. Every timing is taken inside the sender's process. Each run
 * gets a fresh pair (new users, empty histories), so runs compare like with like.
 *   1. Round trip, one message in flight: `peer.send()` → its 'delivered' event (the receiver
 *      stored it and its ack came back), SALA_BENCH_CHAT_PINGS times after a warm-up, against a
 *      raw TCP ping-pong of the same size between the same two processes (Nagle off), interleaved.
 *   2. Echo (optional): the sender's message → the receiver's reply (a chat message of its own).
 *   3. Messages/s one way with acks: SALA_BENCH_CHAT_MESSAGES messages, at most
 *      SALA_BENCH_CHAT_IN_FLIGHT unacknowledged, until the last ack; peer RSS idle (logged in, link
 *      up) and peak under this load, CPU of all three processes.
 *   Cases 1-3 run with the link rate limit lifted (PeerOptions.tuning), or the receiver would
 *   close the link of a benchmark that sends faster than people type.
 *   4. The default link rate limit (500/s sustained, burst 2000) at work: paced under it, then not.
 * Environment (all optional): SALA_BENCH_CHAT_PINGS (10000), SALA_BENCH_CHAT_WARMUP (1000),
 * SALA_BENCH_CHAT_ECHO_PINGS (2000), SALA_BENCH_CHAT_TEXT_BYTES (100), SALA_BENCH_CHAT_REPEATS (2),
 * SALA_BENCH_CHAT_MESSAGES (5000), SALA_BENCH_CHAT_IN_FLIGHT (32),
 * SALA_BENCH_CHAT_CASES (rtt,echo,flood,limit), SALA_BENCH_PEER_NODE_ARGS (node flags for the
 * peer processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 * Exit status: 0 whatever PASS/MISS says; 1 if a case broke; 2 for a bad environment variable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, initCrypto } from '../../common/index.js';
import { registerAccount } from '../../peer/rendezvous/rendezvous-client.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { readChatBenchConfig, type ChatBenchConfig } from './chat-config.js';
import { ChatPeerChild } from './chat-peer-child.js';
import type { LinkLimits, PeerStats } from './chat-protocol.js';
import { chatReport, sortedSamples, type ChatResults, type PairEvents, type ProcessUse } from './chat-report.js';
import { BenchConfigError } from './config.js';
import { percentile } from './latency.js';
import { formatUs } from './report.js';
import { startResourceMeter } from './resources.js';
import { runBench } from './bench-main.js';

const PASSWORD = 'bench chat password';
/** High enough that the benchmark's own traffic never trips the link limit (the report says so). */
const LIFTED_LIMITS: LinkLimits = { linkMessagesPerSecond: 1_000_000, linkMessageBurst: 1_000_000 };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

interface Pair {
  label: string;
  sender: ChatPeerChild;
  receiver: ChatPeerChild;
  receiverUser: string;
}

interface Context {
  config: ChatBenchConfig;
  server: RendezvousServer;
  workDir: string;
  results: ChatResults;
  children: Set<ChatPeerChild>;
}

/** Registers two fresh users, starts one process for each, logs both in and links them. */
async function startPair(ctx: Context, label: string, limits: LinkLimits): Promise<Pair> {
  const [senderUser, receiverUser] = [`${label}-a`, `${label}-b`];
  const { port, fingerprint } = ctx.server.info;
  for (const user of [senderUser, receiverUser]) {
    await registerAccount({ host: '127.0.0.1', port, expectedFingerprint: fingerprint, user, password: PASSWORD, identity: generateIdentity() });
  }
  const sender = new ChatPeerChild(senderUser, ctx.config.peerNodeArgs);
  const receiver = new ChatPeerChild(receiverUser, ctx.config.peerNodeArgs);
  ctx.children.add(sender);
  ctx.children.add(receiver);
  const connect = (child: ChatPeerChild, user: string): Promise<unknown> =>
    child.call({ cmd: 'connect', user, password: PASSWORD, dataDir: join(ctx.workDir, user), serverPort: port, serverKey: fingerprint, limits }, 30_000);
  await Promise.all([connect(sender, senderUser), connect(receiver, receiverUser)]);
  await sender.call({ cmd: 'link', to: receiverUser }, 30_000);
  return { label, sender, receiver, receiverUser };
}

async function stats(pair: Pair): Promise<{ sender: PeerStats; receiver: PeerStats }> {
  const [sender, receiver] = await Promise.all([pair.sender.call({ cmd: 'stats' }, 10_000), pair.receiver.call({ cmd: 'stats' }, 10_000)]);
  return { sender, receiver };
}

/** Records what the pair's peers saw (link closes, server disconnects, warnings), then stops them. */
async function stopPair(ctx: Context, pair: Pair): Promise<void> {
  try {
    const end = await stats(pair);
    const events: PairEvents = { label: pair.label, ...end };
    ctx.results.events.push(events);
  } finally {
    await Promise.all([pair.sender.stop(), pair.receiver.stop()]);
    ctx.children.delete(pair.sender);
    ctx.children.delete(pair.receiver);
  }
}

async function withPair(ctx: Context, label: string, limits: LinkLimits, work: (pair: Pair) => Promise<void>): Promise<void> {
  try {
    const pair = await startPair(ctx, label, limits);
    try {
      await work(pair);
    } finally {
      await stopPair(ctx, pair);
    }
  } catch (err) {
    const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    ctx.results.broken.push({ label, message });
    progress(`  ${label}: BROKEN: ${message}`);
  }
}

/** Meters all three processes over `work`: sender, receiver, and this one (the server). */
async function metered<T>(pair: Pair, work: () => Promise<T>): Promise<{ result: T; use: ProcessUse }> {
  await Promise.all([pair.sender.call({ cmd: 'meter-start' }, 10_000), pair.receiver.call({ cmd: 'meter-start' }, 10_000)]);
  const server = startResourceMeter();
  const result = await work();
  const serverUse = server.stop();
  const [sender, receiver] = await Promise.all([pair.sender.call({ cmd: 'meter-stop' }, 10_000), pair.receiver.call({ cmd: 'meter-stop' }, 10_000)]);
  return { result, use: { sender, receiver, server: serverUse } };
}

function figures(samplesUs: readonly number[]): string {
  const sorted = sortedSamples(samplesUs);
  return `p50 ${formatUs(percentile(sorted, 50))}, p99 ${formatUs(percentile(sorted, 99))}`;
}

/** One fresh pair per run: raw ping and chat round trips over the same two processes, interleaved. */
async function latencyCases(ctx: Context): Promise<void> {
  const { pings, warmup, textBytes, repeats } = ctx.config;
  progress(`round trips: ${pings} x ${textBytes} B after ${warmup} warm-up, ${repeats} run(s), a fresh pair each`);
  for (let run = 1; run <= repeats; run += 1) {
    await withPair(ctx, `rtt${run}`, LIFTED_LIMITS, async (pair) => {
      const { port } = await pair.receiver.call({ cmd: 'raw-listen' }, 10_000);
      const kinds = run % 2 === 1 ? (['raw', 'ack'] as const) : (['ack', 'raw'] as const);
      for (const kind of kinds) {
        const timeoutMs = 600_000 + (pings + warmup) * 50;
        const { result, use } = await metered(pair, () =>
          kind === 'raw'
            ? pair.sender.call({ cmd: 'raw-ping', port, pings, warmup, bytes: textBytes }, timeoutMs)
            : pair.sender.call({ cmd: 'rtt', to: pair.receiverUser, mode: 'ack', count: pings, warmup, textBytes }, timeoutMs),
        );
        ctx.results.latency.push({ kind, run, samplesUs: result.samplesUs, roundTrips: pings + warmup, use });
        progress(`  ${kind} #${run}: ${figures(result.samplesUs)}`);
      }
    });
  }
}

async function echoCase(ctx: Context): Promise<void> {
  const { echoPings, warmup, textBytes } = ctx.config;
  const echoWarmup = Math.min(warmup, Math.ceil(echoPings / 10));
  progress(`echo: ${echoPings} x ${textBytes} B after ${echoWarmup} warm-up`);
  await withPair(ctx, 'echo', LIFTED_LIMITS, async (pair) => {
    await pair.receiver.call({ cmd: 'echo', isOn: true }, 10_000);
    const command = { cmd: 'rtt', to: pair.receiverUser, mode: 'echo', count: echoPings, warmup: echoWarmup, textBytes } as const;
    const { result, use } = await metered(pair, () => pair.sender.call(command, 600_000 + (echoPings + echoWarmup) * 100));
    ctx.results.latency.push({ kind: 'echo', run: 1, samplesUs: result.samplesUs, roundTrips: echoPings + echoWarmup, use });
    progress(`  echo: ${figures(result.samplesUs)}`);
  });
}

/** Messages/s with acks, and the peers' RSS idle and under that load; a fresh pair per run. */
async function floodCases(ctx: Context): Promise<void> {
  const { messages, inFlight, textBytes, repeats } = ctx.config;
  progress(`messages/s: ${messages} x ${textBytes} B, at most ${inFlight} unacknowledged, ${repeats} run(s), a fresh pair each`);
  for (let run = 1; run <= repeats; run += 1) {
    await withPair(ctx, `flood${run}`, LIFTED_LIMITS, async (pair) => {
      // Idle: logged in, link up, one message exchanged, and a moment for startup garbage to settle.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const idle = await stats(pair);
      const command = { cmd: 'flood', to: pair.receiverUser, count: messages, inFlight, textBytes, timeoutMs: 900_000 } as const;
      const { result, use } = await metered(pair, () => pair.sender.call(command, 930_000));
      if (result.delivered !== messages) throw new Error(`${result.delivered} of ${messages} messages were acknowledged`);
      ctx.results.flood.push({ run, result, use, idle, after: await stats(pair) });
      progress(`  throughput #${run}: ${(result.delivered / result.seconds).toFixed(0)} msg/s (${result.seconds.toFixed(2)} s)`);
    });
  }
}

/** The default link limit, a fresh pair per run: paced under it, then as fast as the sender goes. */
async function limitCases(ctx: Context): Promise<void> {
  const { inFlight, textBytes } = ctx.config;
  progress(`default link rate limit, at most ${inFlight} unacknowledged`);
  const runs: { label: string; count: number; perSecond?: number; timeoutMs: number }[] = [
    { label: 'paced at 450/s', count: 4_500, perSecond: 450, timeoutMs: 30_000 },
    { label: 'unpaced', count: 5_000, timeoutMs: 60_000 },
  ];
  for (const [index, spec] of runs.entries()) {
    await withPair(ctx, `limit${index + 1}`, {}, async (pair) => {
      const command = {
        cmd: 'flood',
        to: pair.receiverUser,
        count: spec.count,
        inFlight,
        textBytes,
        timeoutMs: spec.timeoutMs,
        ...(spec.perSecond === undefined ? {} : { perSecond: spec.perSecond }),
      } as const;
      const before = await stats(pair);
      const { result, use } = await metered(pair, () => pair.sender.call(command, spec.timeoutMs + 30_000));
      const after = await stats(pair);
      const entry = { label: spec.label, result, use, before, after };
      ctx.results.limit.push(entry);
      const rate = (result.delivered / result.seconds).toFixed(0);
      const closes = after.receiver.linkDowns.join(', ') || 'never';
      progress(`  ${spec.label}: ${result.delivered}/${spec.count} acknowledged in ${result.seconds.toFixed(1)} s (${rate}/s); receiver closed the link: ${closes}`);
    });
  }
}

async function main(): Promise<number> {
  let config: ChatBenchConfig;
  try {
    config = readChatBenchConfig(process.env);
  } catch (err) {
    if (!(err instanceof BenchConfigError)) throw err;
    process.stderr.write(`bench:chat: ${err.message}\n`);
    return 2;
  }
  await initCrypto();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'sala-bench-chat-'));
  const children = new Set<ChatPeerChild>();
  process.once('exit', () => {
    for (const child of children) child.kill();
    rmSync(workDir, { recursive: true, force: true });
  });
  const onSignal = (): void => process.exit(130);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const server = await RendezvousServer.start({
    dataDir: join(workDir, 'server'),
    port: 0,
    adminPort: 0,
    isMdnsEnabled: false,
    passwordHashing: { opslimit: 1, memlimitBytes: 64 * 1024, workers: 1 },
  });
  const results: ChatResults = { latency: [], flood: [], limit: [], events: [], broken: [] };
  const ctx: Context = { config, server, workDir, results, children };
  try {
    if (config.cases.has('rtt')) await latencyCases(ctx);
    if (config.cases.has('echo')) await echoCase(ctx);
    if (config.cases.has('flood')) await floodCases(ctx);
    if (config.cases.has('limit')) await limitCases(ctx);
    process.stdout.write(chatReport(config, results, { startedAt, loadAtStart, serverPid: process.pid }));
    return results.broken.length > 0 ? 1 : 0;
  } finally {
    for (const child of children) await child.stop();
    await server.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

runBench('bench:chat', main);
