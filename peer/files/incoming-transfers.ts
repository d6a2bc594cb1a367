import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SalaError, toSalaError, type MessageOf } from '../../common/index.js';
import type { PeerLink } from '../links/link-manager.js';
import type { FileContext } from './file-context.js';
import { freeBytes } from './file-hash.js';
import { formatBytes } from '../byte-size.js';
import { codeOf, MIN_CREDIT_GRANT_BYTES, sendQuietly } from './outgoing-transfers.js';
import { PartHash } from './part-hash.js';
import { ProgressThrottle } from './progress-throttle.js';
import { safeFileName, uniquePath } from './safe-name.js';
import { INCOMING_RECORD, TransferRecords, type IncomingRecord } from './transfer-records.js';

export interface IncomingOptions {
  downloadsDir: string;
  isAutoAccept: boolean;
  /** Offers above this size are refused (SALA_E_FILE_TOO_LARGE). */
  maxFileBytes: number;
  /** Credit window: the most file bytes in flight towards us (and buffered on their way to disk). */
  windowBytes?: number;
}

/**
 * 256 KiB in flight: several times a LAN's bandwidth-delay product (1 Gbit/s × 0.5 ms ≈ 62 KiB),
 * and small enough that a chat message waits behind at most a few milliseconds of file data
 * (measured: 1 MiB made chat 3–8× slower during a transfer on a busy two-core machine).
 */
export const DEFAULT_WINDOW_BYTES = 256 * 1024;
/**
 * Unfinished transfers (waiting for an answer, or accepted) per sender, and in all: more are refused,
 * so nobody can fill our records, our disk reservations, or the queue everyone else's offers share.
 */
const MAX_TRANSFERS_PER_SENDER = 16;
const MAX_TRANSFERS = 256;
/** Room left free on the disk beyond the file itself. */
const DISK_MARGIN_BYTES = 1024 * 1024;

/** One attempt at receiving a transfer's bytes over one link. */
interface Receive {
  readonly link: PeerLink;
  readonly record: IncomingRecord & { partPath: string };
  readonly stream: WriteStream;
  readonly hash: PartHash;
  /** The offset the next chunk must have. */
  nextOffset: number;
  /** Bytes safely handed to the file system. */
  written: number;
  /** Credit granted so far, as an absolute offset: no chunk may reach past it. */
  grantedTo: number;
  /** A grant (and progress report) is due this event-loop turn: writes completing together share one. */
  isGrantDue: boolean;
  isEnded: boolean;
}

/**
 * The receiving half of file transfer. An offer is shown (`file.offer`) and waits for accept or
 * decline; an accepted file is written to `NAME.part` in the downloads folder, hashed as it comes,
 * and renamed to its final, never-overwriting name only when the whole-file SHA-256 matches. Credit
 * is granted only for bytes already written, so memory stays bounded by the window whatever the
 * size. Accepted transfers survive a lost link or a restart: when the sender offers again, we
 * answer with the size of our `.part` file and it continues from there.
 */
export class IncomingTransfers {
  readonly #context: FileContext;
  readonly #options: IncomingOptions;
  readonly #records: TransferRecords<IncomingRecord>;
  readonly #receives = new Map<string, Receive>();
  /** Write streams of stopped receives still flushing: a resume waits for them before it counts bytes. */
  readonly #closing = new Map<string, Promise<void>>();
  /** Offers already shown by this run (a re-offer after a lost link is not shown twice). */
  readonly #shown = new Set<string>();
  /** Paths of `.part` and final files being made, so two transfers of one name never collide. */
  readonly #reserved = new Set<string>();
  readonly #progress = new ProgressThrottle();
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #windowBytes: number;

  constructor(context: FileContext, options: IncomingOptions) {
    this.#context = context;
    this.#options = options;
    this.#windowBytes = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
    this.#records = new TransferRecords(context.path('transfers-in.json'), INCOMING_RECORD, {
      logger: context.logger,
      maxRecords: MAX_TRANSFERS,
      // A record pushed out must not leave its partial file behind.
      onEvict: (record) => {
        if (record.partPath === undefined) return;
        this.#reserved.delete(record.partPath);
        void rm(record.partPath, { force: true }).catch(() => undefined);
      },
    });
    for (const record of this.#records.all()) if (record.partPath !== undefined) this.#reserved.add(record.partPath);
    this.#sweepTimer = setInterval(() => this.#dropStaleOffers(), Math.min(60_000, context.offerTimeoutMs));
    this.#sweepTimer.unref();
  }

  has(transferId: string): boolean {
    return this.#records.get(transferId) !== undefined;
  }

  /** Users whose accepted transfers wait to resume: the peer dials them. */
  pendingSenders(): string[] {
    return [...new Set(this.#records.all().filter((r) => r.state === 'accepted').map((r) => r.from))];
  }

  hasPending(user: string): boolean {
    return this.#records.all().some((r) => r.from === user && r.state === 'accepted');
  }

  onMessage(link: PeerLink, message: MessageOf<'file.offer' | 'file.chunk' | 'file.done' | 'file.cancel'>): void {
    switch (message.type) {
      case 'file.offer':
        void this.#onOffer(link, message);
        return;
      case 'file.chunk':
        this.#onChunk(link, message);
        return;
      case 'file.done':
        void this.#onDone(link, message.transferId);
        return;
      case 'file.cancel': {
        const record = this.#records.get(message.transferId);
        if (record === undefined || record.from !== link.peer.user) return;
        void this.#end(record, new SalaError(codeOf(message.code), message.message), false);
        return;
      }
      default:
        return;
    }
  }

  onLinkDown(link: PeerLink): void {
    for (const receive of this.#receives.values()) if (receive.link === link) this.#stopReceive(receive);
  }

  async accept(transferId: string): Promise<void> {
    const record = this.#find(transferId, 'offered');
    await mkdir(this.#options.downloadsDir, { recursive: true }).catch((err: unknown) => {
      throw new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot create the downloads folder ${this.#options.downloadsDir}: ${(err as Error).message}`);
    });
    const free = await freeBytes(this.#options.downloadsDir);
    // Other accepted transfers will need their space too (counted whole: a safe overestimate).
    const promised = this.#records.all().reduce((sum, r) => (r.state === 'accepted' ? sum + r.size : sum), 0);
    if (free !== undefined && free < record.size + promised + DISK_MARGIN_BYTES) {
      const error = new SalaError(
        'SALA_E_DISK_FULL',
        `${record.offeredName} needs ${formatBytes(record.size)} but only ${formatBytes(free)} are free in ${this.#options.downloadsDir}.`,
      );
      await this.#end(record, error, true);
      throw error;
    }
    const partPath = this.#reservePart(record.safeName);
    const accepted: IncomingRecord & { partPath: string } = { ...record, state: 'accepted', partPath };
    this.#records.put(accepted);
    this.#context.record('file.accepted', `from=${record.from} id=${record.transferId} size=${record.size}`);
    const link = this.#context.linkTo(record.from);
    if (link === undefined) this.#context.requestLink(record.from); // it resumes when they offer again
    else await this.#startReceive(link, accepted);
  }

  async decline(transferId: string): Promise<void> {
    const record = this.#find(transferId, 'offered');
    this.#records.remove(transferId);
    this.#context.record('file.declined', `from=${record.from} id=${transferId}`);
    const link = this.#context.linkTo(record.from);
    if (link !== undefined) sendQuietly(link, { type: 'file.decline', transferId });
  }

  /** Ends a transfer on both sides and removes the partial file. */
  async cancel(transferId: string, error: SalaError): Promise<boolean> {
    const record = this.#records.get(transferId);
    if (record === undefined) return false;
    await this.#end(record, error, true);
    return true;
  }

  /** Resolves a transfer id the user typed: the whole id or an unambiguous start of it (≥ 4 characters). */
  resolveId(typed: string): string | undefined {
    if (this.#records.get(typed) !== undefined) return typed;
    if (typed.length < 4) return undefined;
    const matches = this.#records.all().filter((r) => r.transferId.startsWith(typed));
    return matches.length === 1 ? matches[0]?.transferId : undefined;
  }

  flushed(): Promise<void> {
    return this.#records.flushed();
  }

  close(): void {
    clearInterval(this.#sweepTimer);
    for (const receive of this.#receives.values()) this.#stopReceive(receive);
  }

  #find(transferId: string, state: IncomingRecord['state']): IncomingRecord {
    const record = this.#records.get(transferId);
    if (record === undefined || record.state !== state) {
      throw new SalaError('SALA_E_TRANSFER_UNKNOWN', `No file offer ${transferId.slice(0, 40)} is waiting for an answer.`);
    }
    return record;
  }

  async #onOffer(link: PeerLink, offer: MessageOf<'file.offer'>): Promise<void> {
    const from = link.peer.user;
    const known = this.#records.get(offer.transferId);
    if (known !== undefined) {
      if (known.from !== from) return; // someone else's id: ignored
      if (known.state === 'accepted') await this.#resume(link, known);
      else if (!this.#shown.has(known.transferId)) this.#show(known);
      return;
    }
    const sha256 = Buffer.from(offer.sha256).toString('hex');
    const record: IncomingRecord = {
      transferId: offer.transferId,
      from,
      offeredName: offer.name,
      safeName: safeFileName(offer.name),
      size: offer.size,
      sha256,
      state: 'offered',
      createdAt: Date.now(),
    };
    if (offer.size > this.#options.maxFileBytes) {
      this.#show(record);
      const error = new SalaError('SALA_E_FILE_TOO_LARGE', `${from} offered ${record.safeName} (${formatBytes(offer.size)}); this peer accepts files up to ${formatBytes(this.#options.maxFileBytes)}.`);
      this.#refuse(link, record, error);
      return;
    }
    const all = this.#records.all();
    if (all.length >= MAX_TRANSFERS || all.filter((r) => r.from === from).length >= MAX_TRANSFERS_PER_SENDER) {
      this.#refuse(link, record, new SalaError('SALA_E_RATE_LIMIT', `Too many of your files are waiting for ${this.#context.me}; try again when some are done.`));
      return;
    }
    this.#records.put(record);
    this.#show(record);
    if (this.#options.isAutoAccept) {
      await this.accept(record.transferId).catch((err: unknown) => this.#context.logger.info('files.auto_accept_failed', { code: toSalaError(err, 'SALA_E_DOWNLOADS_DIR', '').code }));
    }
  }

  #show(record: IncomingRecord): void {
    this.#shown.add(record.transferId);
    this.#context.emit('file.offer', { transferId: record.transferId, from: record.from, name: record.safeName, size: record.size });
  }

  #refuse(link: PeerLink, record: IncomingRecord, error: SalaError): void {
    sendQuietly(link, { type: 'file.cancel', transferId: record.transferId, code: error.code, message: error.message });
    this.#context.record('file.failed', `from=${record.from} id=${record.transferId} code=${error.code}`);
    this.#context.emit('file.failed', { transferId: record.transferId, code: error.code, message: error.message });
  }

  /** An accepted transfer offered again (new link, or we restarted): continue after the bytes we hold. */
  async #resume(link: PeerLink, record: IncomingRecord): Promise<void> {
    if (record.partPath === undefined) return;
    const current = this.#receives.get(record.transferId);
    if (current !== undefined) this.#stopReceive(current);
    await this.#closing.get(record.transferId);
    await this.#startReceive(link, { ...record, partPath: record.partPath });
  }

  /**
   * Accepts from the bytes the `.part` already holds, at once: the held prefix is hashed in the
   * background while new chunks arrive (PartHash), instead of the sender waiting for that first.
   */
  async #startReceive(link: PeerLink, record: IncomingRecord & { partPath: string }): Promise<void> {
    let held = 0;
    try {
      held = (await stat(record.partPath)).size;
    } catch {
      held = 0; // no partial file (yet): from the start
    }
    if (held > record.size) {
      await rm(record.partPath, { force: true });
      held = 0;
    }
    let reader: FileHandle | undefined;
    if (held > 0) {
      reader = await open(record.partPath, 'r').catch(() => undefined);
      if (reader === undefined) held = 0; // unreadable: start again (the write stream truncates it)
    }
    if (link.messages.isClosed) {
      await reader?.close();
      return;
    }
    const hash = new PartHash(reader, held);
    const stream = createWriteStream(record.partPath, { flags: held === 0 ? 'w' : 'a', mode: 0o600 });
    const receive: Receive = { link, record, stream, hash, nextOffset: held, written: held, grantedTo: held, isGrantDue: false, isEnded: false };
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (receive.isEnded) return;
      const error =
        err.code === 'ENOSPC' || err.code === 'EDQUOT'
          ? new SalaError('SALA_E_DISK_FULL', `The disk holding ${this.#options.downloadsDir} is full; ${record.safeName} could not be stored.`)
          : new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot write ${record.partPath}: ${err.message}`);
      void this.#end(record, error, true);
    });
    hash.caughtUp().catch((err: unknown) => {
      if (receive.isEnded) return;
      void this.#end(record, new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot read back ${record.partPath}: ${(err as Error).message}`), true);
    });
    this.#receives.set(record.transferId, receive);
    sendQuietly(link, { type: 'file.accept', transferId: record.transferId, offset: held });
    this.#grant(receive);
  }

  #onChunk(link: PeerLink, chunk: MessageOf<'file.chunk'>): void {
    const receive = this.#receives.get(chunk.transferId);
    if (receive === undefined || receive.link !== link || receive.isEnded) {
      // Chunks after a cancel or a resume on another link are stale, not an attack; anything else is.
      if (this.#records.get(chunk.transferId)?.from !== link.peer.user) this.#violation(link, 'a file chunk for a transfer it is not sending');
      return;
    }
    const { record } = receive;
    const end = chunk.offset + chunk.data.length;
    if (chunk.offset !== receive.nextOffset) {
      void this.#end(record, new SalaError('SALA_E_TRANSFER_CORRUPT', `${record.from} sent ${record.safeName} out of order.`), true);
      return;
    }
    if (end > record.size) {
      void this.#end(record, new SalaError('SALA_E_TRANSFER_CORRUPT', `${record.from} sent more than the ${record.size} bytes announced for ${record.safeName}.`), true);
      return;
    }
    if (end > receive.grantedTo) {
      // The transfer ends with the link: nothing of it stays (no .part, no record to resume).
      void this.#end(record, new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `${record.from} sent more of ${record.safeName} than it was allowed to.`), false);
      this.#violation(link, 'more file data than it was granted credit for');
      return;
    }
    receive.nextOffset = end;
    receive.hash.update(chunk.data);
    receive.stream.write(chunk.data, (err) => {
      if (err !== null && err !== undefined) return; // reported by the stream's 'error'
      receive.written += chunk.data.length;
      receive.hash.written(receive.written);
      this.#grantSoon(receive);
    });
  }

  /**
   * Grants credit (and reports progress) once per event-loop turn, however many writes completed in
   * it: the file stream completes queued chunks together (one writev), and a grant per chunk would
   * be a message per 64 KiB where one covers them all.
   */
  #grantSoon(receive: Receive): void {
    if (receive.isGrantDue || receive.isEnded) return;
    receive.isGrantDue = true;
    setImmediate(() => {
      receive.isGrantDue = false;
      if (receive.isEnded) return;
      this.#grant(receive);
      const { transferId, size } = receive.record;
      if (this.#progress.shouldReport(transferId, false)) this.#context.emit('file.progress', { transferId, bytes: receive.written, total: size });
    });
  }

  /** Keeps `window` bytes of credit ahead of what is on disk, granting in steps of a quarter window. */
  #grant(receive: Receive): void {
    if (receive.isEnded) return;
    const target = Math.min(receive.record.size, receive.written + this.#windowBytes);
    // Grants of at least a quarter window and 16 KiB (senders refuse smaller ones but the last).
    if (target - receive.grantedTo < Math.max(this.#windowBytes / 4, MIN_CREDIT_GRANT_BYTES) && target < receive.record.size) return;
    if (target <= receive.grantedTo) return;
    sendQuietly(receive.link, { type: 'file.credit', transferId: receive.record.transferId, bytes: target - receive.grantedTo });
    receive.grantedTo = target;
  }

  async #onDone(link: PeerLink, transferId: string): Promise<void> {
    const receive = this.#receives.get(transferId);
    if (receive === undefined || receive.link !== link || receive.isEnded) return;
    const { record } = receive;
    if (receive.nextOffset !== record.size) {
      await this.#end(record, new SalaError('SALA_E_TRANSFER_CORRUPT', `${record.from} sent ${receive.nextOffset} of the ${record.size} bytes announced for ${record.safeName}.`), true);
      return;
    }
    receive.isEnded = true;
    this.#receives.delete(transferId);
    try {
      await closeStream(receive.stream);
    } catch (err) {
      await this.#end(record, toSalaError(err, 'SALA_E_DOWNLOADS_DIR', `Cannot write ${record.partPath}.`), true);
      return;
    }
    let sha256: string;
    try {
      sha256 = await receive.hash.digest();
    } catch (err) {
      await this.#end(record, new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot read back ${record.partPath}: ${(err as Error).message}`), true);
      return;
    }
    if (sha256 !== record.sha256) {
      await this.#end(record, new SalaError('SALA_E_TRANSFER_CORRUPT', `${record.safeName} from ${record.from} does not match the hash announced; it was discarded.`), true);
      return;
    }
    let finalPath: string;
    try {
      finalPath = await this.#moveIntoPlace(record);
    } catch (err) {
      await this.#end(record, toSalaError(err, 'SALA_E_DOWNLOADS_DIR', `Cannot store ${record.safeName}.`), true);
      return;
    }
    this.#records.remove(transferId);
    this.#reserved.delete(record.partPath);
    this.#progress.forget(transferId);
    sendQuietly(link, { type: 'file.complete', transferId });
    this.#context.record('file.completed', `from=${record.from} id=${transferId} size=${record.size}`);
    this.#context.emit('file.progress', { transferId, bytes: record.size, total: record.size });
    this.#context.emit('file.received', { transferId, size: record.size, sha256, path: finalPath });
  }

  /** Renames the verified `.part` to a name nobody has: reserved by an exclusive create, then replaced. */
  async #moveIntoPlace(record: IncomingRecord & { partPath: string }): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const candidate = uniquePath(this.#options.downloadsDir, record.safeName, (path) => this.#reserved.has(path));
      try {
        closeSync(openSync(candidate, 'wx', 0o600));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 100) continue; // appeared meanwhile
        throw err;
      }
      await rename(record.partPath, candidate);
      return candidate;
    }
  }

  #reservePart(safeName: string): string {
    for (let attempt = 0; ; attempt++) {
      const candidate = uniquePath(this.#options.downloadsDir, `${safeName}.part`, (path) => this.#reserved.has(path));
      try {
        closeSync(openSync(candidate, 'wx', 0o600));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 100) continue;
        throw new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot create ${join(this.#options.downloadsDir, safeName)}.part: ${(err as Error).message}`);
      }
      this.#reserved.add(candidate);
      return candidate;
    }
  }

  /** Ends a transfer: tells the sender (when it is our decision), removes the partial file, reports. */
  async #end(record: IncomingRecord, error: SalaError, shouldTellSender: boolean): Promise<void> {
    if (this.#records.get(record.transferId) === undefined) return;
    this.#records.remove(record.transferId);
    const receive = this.#receives.get(record.transferId);
    if (receive !== undefined) this.#stopReceive(receive);
    if (shouldTellSender) {
      const link = receive?.link ?? this.#context.linkTo(record.from);
      if (link !== undefined) sendQuietly(link, { type: 'file.cancel', transferId: record.transferId, code: error.code, message: error.message.slice(0, 1024) });
    }
    if (record.partPath !== undefined) {
      await this.#closing.get(record.transferId);
      await rm(record.partPath, { force: true }).catch(() => undefined);
      this.#reserved.delete(record.partPath);
    }
    this.#progress.forget(record.transferId);
    this.#context.record('file.failed', `from=${record.from} id=${record.transferId} code=${error.code}`);
    this.#context.emit('file.failed', { transferId: record.transferId, code: error.code, message: error.message });
  }

  #stopReceive(receive: Receive): void {
    receive.isEnded = true;
    const { transferId } = receive.record;
    if (this.#receives.get(transferId) === receive) this.#receives.delete(transferId);
    receive.hash.stop();
    const closing = Promise.allSettled([closeStream(receive.stream), receive.hash.caughtUp()])
      .then(() => undefined)
      .finally(() => {
        if (this.#closing.get(transferId) === closing) this.#closing.delete(transferId);
      });
    this.#closing.set(transferId, closing);
  }

  /** A sender breaking the protocol loses the link (like any other malformed input). */
  #violation(link: PeerLink, what: string): void {
    this.#context.logger.warn('files.protocol_violation', { user: link.peer.user, what });
    link.messages.destroy(new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `${link.peer.user} sent ${what}; the link was closed.`));
  }

  #dropStaleOffers(): void {
    const cutoff = Date.now() - this.#context.offerTimeoutMs;
    for (const record of this.#records.all()) {
      if (record.state === 'offered' && record.createdAt < cutoff) {
        void this.#end(record, new SalaError('SALA_E_TRANSFER_TIMEOUT', `The offer of ${record.safeName} from ${record.from} expired unanswered.`), true);
      }
    }
  }
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.closed) {
      resolve();
      return;
    }
    stream.once('error', reject);
    stream.once('close', () => resolve());
    stream.end();
  });
}
