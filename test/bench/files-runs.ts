import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { generateIdentity } from '../../common/index.js';
import { registerAccount } from '../../peer/rendezvous/rendezvous-client.js';
import type { FilesBenchConfig } from './files-config.js';
import { FilesChild } from './files-child.js';
import { epochMs, type MeterResult } from './files-protocol.js';

/** Generous, so that only a stalled transfer fails: 60 s plus 10 MiB/s. */
export function deadlineMs(bytes: number): number {
  return 60_000 + (bytes / (10 * 1024 * 1024)) * 1000;
}

const COMMAND_TIMEOUT_MS = 30_000;
const PASSWORD = 'bench files password';

export interface FilesContext {
  config: FilesBenchConfig;
  server: { port: number; fingerprint: string };
  workDir: string;
  /** Every child still running, so that an exit or a crash of the driver can kill them. */
  children: Set<FilesChild>;
  pairs: number;
}

export interface SourceFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface SalaRun {
  windowBytes: number;
  /** The 1-minute load average when the run started (the machine may be shared). */
  load: number;
  bytes: number;
  /** sendFile() called → resolved: stat, the pre-offer SHA-256 of the whole file, the offer. */
  hashMs: number;
  /** sendFile() called → the receiver's file.received (hashed, stored, renamed): the user's wait. */
  totalMs: number;
  /** sendFile() resolved → file.received: the transfer itself, without the pre-offer hash. */
  transferMs: number;
  /** The sender's file.sent (the receiver's file.complete arrived), for a cross-check of the clocks. */
  sentMs: number;
  /**
   * The codes of the sender's `link.down` events during the transfer: each is a lost link, after
   * which the transfer resumed on a new one (none expected on 127.0.0.1).
   */
  linkDowns: string[];
  sender: MeterResult;
  receiver: MeterResult;
}

export interface RawRun {
  load: number;
  bytes: number;
  /** Connect → the receiver's file stream closed. */
  totalMs: number;
  sender: MeterResult;
  receiver: MeterResult;
}

export interface ResumeRun {
  bytes: number;
  /** The last progress the receiver reported before it was killed, and the size of its .part then. */
  killedAtBytes: number;
  heldBytes: number;
  /** SIGKILL → the restarted process's Peer.connect resolved (process start, login, listening). */
  killToReadyMs: number;
  /** Ready → the sender's link.up to the restarted receiver. */
  readyToLinkMs: number;
  /** Ready → the first file.progress after resumption, and the bytes it reported. */
  readyToProgressMs: number;
  resumedAtBytes: number;
  /** sendFile() called → file.received, across the kill. */
  totalMs: number;
}

export interface ChatRun {
  windowBytes: number;
  /** Chat round trips (send → 'delivered'), ms: with the link idle, then while the file is on its way. */
  idleMs: number[];
  loadedMs: number[];
  /** True if the file was still under way when the last loaded round trip ended. */
  isOverlapped: boolean;
}

/** Chat while a file goes: round trips this many, this far apart (the transfer holds back for 25 ms after each). */
const CHAT_PINGS = 40;
const CHAT_INTERVAL_MS = 100;

interface Pair {
  label: string;
  sender: FilesChild;
  receiver: FilesChild;
  senderUser: string;
  receiverUser: string;
  receiverDataDir: string;
  downloadsDir: string;
}

export class BrokenRunError extends Error {
  override get name(): string {
    return 'BrokenRunError';
  }
}

async function connect(ctx: FilesContext, child: FilesChild, user: string, dataDir: string, downloadsDir: string, windowBytes?: number): Promise<number> {
  const { port, fingerprint } = ctx.server;
  const command = {
    cmd: 'connect',
    user,
    password: PASSWORD,
    dataDir,
    downloadsDir,
    serverPort: port,
    serverKey: fingerprint,
    ...(windowBytes === undefined ? {} : { windowBytes }),
  } as const;
  return (await child.call(command, COMMAND_TIMEOUT_MS)).readyAt;
}

function spawn(ctx: FilesContext, label: string): FilesChild {
  const child = new FilesChild(label, ctx.config.peerNodeArgs);
  ctx.children.add(child);
  return child;
}

/** Two fresh users, one process each; with `peers`, logged in (the receiver with `windowBytes`) and linked. */
async function startPair(ctx: FilesContext, peers: { windowBytes: number } | undefined): Promise<Pair> {
  ctx.pairs += 1;
  const label = `f${ctx.pairs}`;
  const [senderUser, receiverUser] = [`${label}-snd`, `${label}-rcv`];
  const pair: Pair = {
    label,
    sender: spawn(ctx, senderUser),
    receiver: spawn(ctx, receiverUser),
    senderUser,
    receiverUser,
    receiverDataDir: join(ctx.workDir, receiverUser),
    downloadsDir: join(ctx.workDir, `${receiverUser}-downloads`),
  };
  if (peers === undefined) return pair;
  mkdirSync(pair.downloadsDir, { recursive: true });
  const { port, fingerprint } = ctx.server;
  for (const user of [senderUser, receiverUser]) {
    await registerAccount({ host: '127.0.0.1', port, expectedFingerprint: fingerprint, user, password: PASSWORD, identity: generateIdentity() });
  }
  await Promise.all([
    connect(ctx, pair.sender, senderUser, join(ctx.workDir, senderUser), join(ctx.workDir, `${senderUser}-downloads`)),
    connect(ctx, pair.receiver, receiverUser, pair.receiverDataDir, pair.downloadsDir, peers.windowBytes),
  ]);
  await pair.sender.call({ cmd: 'link', to: receiverUser }, COMMAND_TIMEOUT_MS);
  return pair;
}

async function stopChild(ctx: FilesContext, child: FilesChild): Promise<void> {
  await child.stop();
  ctx.children.delete(child);
}

async function withPair<T>(ctx: FilesContext, peers: { windowBytes: number } | undefined, work: (pair: Pair) => Promise<T>): Promise<T> {
  const pair = await startPair(ctx, peers);
  try {
    return await work(pair);
  } finally {
    await Promise.all([stopChild(ctx, pair.sender), stopChild(ctx, pair.receiver)]);
  }
}

async function meters(pair: Pair, state: 'meter-start' | 'meter-stop'): Promise<[MeterResult, MeterResult]> {
  const [sender, receiver] = await Promise.all([
    pair.sender.call({ cmd: state }, COMMAND_TIMEOUT_MS),
    pair.receiver.call({ cmd: state }, COMMAND_TIMEOUT_MS),
  ]);
  return [sender as MeterResult, receiver as MeterResult];
}

/** The product's own check (SHA-256 against the offer) plus ours against the source; then the copy goes. */
async function checkAndRemoveCopy(source: SourceFile, received: { size: number; sha256: string; path: string }, downloadsDir: string): Promise<void> {
  try {
    if (received.sha256 !== source.sha256) throw new BrokenRunError('the received file\'s SHA-256 differs from the source');
    const { size } = await stat(received.path);
    if (size !== source.bytes || received.size !== source.bytes) throw new BrokenRunError(`the received file has ${size} of ${source.bytes} bytes`);
    const left = (await readdir(downloadsDir)).filter((name) => name !== basename(received.path));
    if (left.length > 0) throw new BrokenRunError(`the downloads folder also holds ${left.join(', ')}`);
  } finally {
    await rm(received.path, { force: true });
  }
}

/** One Sala transfer: sendFile on one peer process → auto-accepted, verified file.received on the other. */
export async function salaTransfer(ctx: FilesContext, source: SourceFile, windowBytes: number): Promise<SalaRun> {
  return withPair(ctx, { windowBytes }, async (pair) => {
    const deadline = deadlineMs(source.bytes);
    const load = loadavg()[0] ?? 0;
    await meters(pair, 'meter-start');
    const offered = await pair.sender.call({ cmd: 'send-file', to: pair.receiverUser, path: source.path }, deadline);
    const received = await pair.receiver.next('file.received', (e) => e.transferId === offered.transferId, deadline);
    const sent = await pair.sender.next('file.sent', (e) => e.transferId === offered.transferId, COMMAND_TIMEOUT_MS);
    const [sender, receiver] = await meters(pair, 'meter-stop');
    await checkAndRemoveCopy(source, received, pair.downloadsDir);
    const linkDowns = pair.sender.seen('link.down').filter((e) => e.at >= offered.calledAt).map((e) => e.code);
    return {
      windowBytes,
      load,
      bytes: source.bytes,
      hashMs: offered.resolvedAt - offered.calledAt,
      totalMs: received.at - offered.calledAt,
      transferMs: received.at - offered.resolvedAt,
      sentMs: sent.at - offered.calledAt,
      linkDowns,
      sender,
      receiver,
    };
  });
}

/** The baseline: the same file copied between two processes with plain TCP (read stream → socket → write stream). */
export async function rawTransfer(ctx: FilesContext, source: SourceFile): Promise<RawRun> {
  return withPair(ctx, undefined, async (pair) => {
    const destination = join(ctx.workDir, `${pair.label}-raw.bin`);
    try {
      const deadline = deadlineMs(source.bytes);
      const { port } = await pair.receiver.call({ cmd: 'raw-listen', path: destination }, COMMAND_TIMEOUT_MS);
      const load = loadavg()[0] ?? 0;
      await meters(pair, 'meter-start');
      const sent = await pair.sender.call({ cmd: 'raw-send', port, path: source.path }, deadline);
      const done = await pair.receiver.next('raw.received', () => true, deadline);
      const [sender, receiver] = await meters(pair, 'meter-stop');
      if (done.bytes !== source.bytes) throw new BrokenRunError(`the raw copy has ${done.bytes} of ${source.bytes} bytes`);
      return { load, bytes: source.bytes, totalMs: done.at - sent.startedAt, sender, receiver };
    } finally {
      await rm(destination, { force: true });
    }
  });
}

/**
 * The receiver is SIGKILLed once it reports half the file, and started again at once with the same
 * data dir and downloads folder; the transfer resumes from its .part by itself (no command).
 */
export async function resumedTransfer(ctx: FilesContext, source: SourceFile): Promise<ResumeRun> {
  return withPair(ctx, { windowBytes: ctx.config.windows[0] ?? 256 * 1024 }, async (pair) => {
    const deadline = deadlineMs(source.bytes);
    const offered = await pair.sender.call({ cmd: 'send-file', to: pair.receiverUser, path: source.path }, deadline);
    const { transferId } = offered;
    await pair.receiver.next('file.progress', (e) => e.transferId === transferId && e.bytes >= source.bytes / 2, deadline);
    const killedAt = epochMs();
    await pair.receiver.killHard();
    ctx.children.delete(pair.receiver);
    const killedAtBytes = Math.max(...pair.receiver.seen('file.progress').filter((e) => e.transferId === transferId).map((e) => e.bytes));
    const partName = (await readdir(pair.downloadsDir)).find((name) => name.endsWith('.part'));
    if (partName === undefined) throw new BrokenRunError('the killed receiver left no .part file');
    const heldBytes = (await stat(join(pair.downloadsDir, partName))).size;

    // The pair's `receiver` is replaced, so that withPair stops the new process at the end.
    pair.receiver = spawn(ctx, `${pair.receiverUser} (restarted)`);
    const readyAt = await connect(ctx, pair.receiver, pair.receiverUser, pair.receiverDataDir, pair.downloadsDir, ctx.config.windows[0]);
    const first = await pair.receiver.next('file.progress', (e) => e.transferId === transferId, deadline);
    const received = await pair.receiver.next('file.received', (e) => e.transferId === transferId, deadline);
    const linkUps = pair.sender.seen('link.up').filter((e) => e.user === pair.receiverUser && e.at > killedAt);
    await checkAndRemoveCopy(source, received, pair.downloadsDir);
    return {
      bytes: source.bytes,
      killedAtBytes,
      heldBytes,
      killToReadyMs: readyAt - killedAt,
      readyToLinkMs: (linkUps[0]?.at ?? Number.NaN) - readyAt,
      readyToProgressMs: first.at - readyAt,
      resumedAtBytes: first.bytes,
      totalMs: received.at - offered.calledAt,
    };
  });
}

/**
 * What the credit window costs chat: round trips between the same two peers idle, then while a
 * file goes from the sender to the receiver (chat in the same direction as the file, which is
 * where it waits behind the data in flight). The transfer's own time is not measured here.
 */
export async function chatDuringTransfer(ctx: FilesContext, source: SourceFile, windowBytes: number): Promise<ChatRun> {
  return withPair(ctx, { windowBytes }, async (pair) => {
    const deadline = deadlineMs(source.bytes);
    const chat = { cmd: 'chat-rtt', to: pair.receiverUser, count: CHAT_PINGS, intervalMs: CHAT_INTERVAL_MS } as const;
    const idle = await pair.sender.call(chat, COMMAND_TIMEOUT_MS);
    const offered = await pair.sender.call({ cmd: 'send-file', to: pair.receiverUser, path: source.path }, deadline);
    await pair.receiver.next('file.progress', (e) => e.transferId === offered.transferId, deadline);
    const loaded = await pair.sender.call(chat, deadline);
    const isOverlapped = pair.receiver.seen('file.received').length === 0;
    const received = await pair.receiver.next('file.received', (e) => e.transferId === offered.transferId, deadline);
    await checkAndRemoveCopy(source, received, pair.downloadsDir);
    return { windowBytes, idleMs: idle.samplesMs, loadedMs: loaded.samplesMs, isOverlapped };
  });
}
