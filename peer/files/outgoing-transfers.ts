import { randomUUID } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { isSalaErrorCode, MAX_FILE_CHUNK_BYTES, MAX_FILE_NAME_BYTES, SalaError, toSalaError, type MessageOf } from '../../common/index.js';
import type { PeerLink } from '../links/link-manager.js';
import { bulkHoldMs } from '../links/link-priority.js';
import { encodeFileChunk } from './file-chunk.js';
import { hashFile, readBlocks } from './file-hash.js';
import type { FileContext } from './file-context.js';
import { ProgressThrottle } from './progress-throttle.js';
import { OUTGOING_RECORD, TransferRecords, type OutgoingRecord } from './transfer-records.js';

/** The smallest credit grant accepted, except the one that completes the file (see file.credit). */
export const MIN_CREDIT_GRANT_BYTES = 16 * 1024;

/** One attempt at sending the bytes of a transfer over one link. */
interface Pump {
  readonly link: PeerLink;
  /** Bytes this pump has to send (size - offset) and the credit granted for them so far. */
  readonly toSend: number;
  granted: number;
  credit: number;
  wake: (() => void) | undefined;
  isStopped: boolean;
}

/**
 * The sending half of file transfer. A file is hashed, offered (name, size, SHA-256), and sent from
 * the offset the receiver asks for, in chunks it has granted credit for, so that a slow disk on the
 * other side never makes us buffer, and a chat message never waits behind more than the credit
 * window. Unfinished transfers are saved, re-offered on every new link to the receiver, and resume
 * from where the receiver's verified bytes end; the same file sent again to the same user resumes too.
 */
export class OutgoingTransfers {
  readonly #context: FileContext;
  readonly #records: TransferRecords<OutgoingRecord>;
  readonly #pumps = new Map<string, Pump>();
  readonly #offerTimers = new Map<string, NodeJS.Timeout>();
  readonly #progress = new ProgressThrottle();

  constructor(context: FileContext) {
    this.#context = context;
    this.#records = new TransferRecords(context.path('transfers-out.json'), OUTGOING_RECORD, { logger: context.logger });
  }

  /** The users with transfers waiting to be (re)offered: the peer dials them like chat recipients. */
  pendingRecipients(): string[] {
    return [...new Set(this.#records.all().map((r) => r.to))];
  }

  hasPending(user: string): boolean {
    return this.#records.all().some((r) => r.to === user);
  }

  has(transferId: string): boolean {
    return this.#records.get(transferId) !== undefined;
  }

  /** Hashes and offers a file; resolves with its transfer id (the same one as an unfinished send of it). */
  async send(to: string, path: string, options: { name?: string | undefined; ref?: string | undefined } = {}): Promise<{ transferId: string }> {
    const name = options.name ?? basename(path);
    if (name === '' || Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) {
      throw new SalaError('SALA_E_COMMAND_INVALID', `The file name to offer must be 1 to ${MAX_FILE_NAME_BYTES} bytes long.`);
    }
    const { size, mtimeMs } = await statFile(path);
    let sha256: string;
    try {
      sha256 = (await hashFile(path, size)).toString('hex');
    } catch (err) {
      throw new SalaError('SALA_E_FILE_UNREADABLE', `Cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    const same = this.#records.all().find((r) => r.to === to && r.path === path && r.size === size && r.sha256 === sha256 && r.name === name);
    const record: OutgoingRecord = same ?? { transferId: randomUUID(), to, path, name, size, sha256, mtimeMs, createdAt: Date.now() };
    this.#records.put({ ...record, mtimeMs });
    this.#context.emit('file.offered', { transferId: record.transferId, to, name, size, ...(options.ref === undefined ? {} : { ref: options.ref }) });
    this.#context.record('file.offered', `to=${to} id=${record.transferId} size=${size}${same === undefined ? '' : ' resumed=true'}`);
    const link = this.#context.linkTo(to);
    if (link === undefined) this.#context.requestLink(to);
    else this.#offer(link, record);
    return { transferId: record.transferId };
  }

  /** A new link: offer again whatever waits for that user (the receiver answers with its offset). */
  onLinkUp(link: PeerLink): void {
    for (const record of this.#records.all()) {
      if (record.to !== link.peer.user) continue;
      // A pump on another link may be on its way out (that link is being replaced, or closed but
      // still unwinding from a wait): offer on the new one anyway; an accept there takes over.
      const pump = this.#pumps.get(record.transferId);
      if (pump === undefined || pump.link !== link) this.#offer(link, record);
    }
  }

  onMessage(link: PeerLink, message: MessageOf<'file.accept' | 'file.decline' | 'file.credit' | 'file.complete' | 'file.cancel'>): void {
    const record = this.#records.get(message.transferId);
    // Only the receiver of a transfer may steer it; anything else is ignored.
    if (record === undefined || record.to !== link.peer.user) return;
    switch (message.type) {
      case 'file.accept':
        this.#clearOfferTimer(record.transferId);
        void this.#pump(link, record, message.offset);
        return;
      case 'file.credit': {
        const pump = this.#pumps.get(record.transferId);
        if (pump === undefined || pump.link !== link) return;
        // Grants are exempt from the link's message count, so tiny ones are refused: at least
        // 16 KiB unless they cover the rest of the file, and never past its end.
        pump.granted += message.bytes;
        if ((message.bytes < MIN_CREDIT_GRANT_BYTES && pump.granted < pump.toSend) || pump.granted > pump.toSend) {
          link.messages.destroy(new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `${record.to} granted file credit in a way the protocol does not allow; the link was closed.`));
          return;
        }
        pump.credit += message.bytes;
        pump.wake?.();
        return;
      }
      case 'file.decline':
        this.#finish(record, 'file.declined');
        this.#context.emit('file.declined', { transferId: record.transferId });
        return;
      case 'file.complete':
        this.#finish(record, 'file.completed');
        this.#context.emit('file.sent', { transferId: record.transferId, size: record.size, sha256: record.sha256 });
        return;
      case 'file.cancel':
        this.#fail(record, new SalaError(codeOf(message.code), message.message), false);
        return;
      default:
        return;
    }
  }

  /** Ends a transfer on both sides (cancelFile, or a failure of ours). */
  cancel(transferId: string, error: SalaError): boolean {
    const record = this.#records.get(transferId);
    if (record === undefined) return false;
    this.#fail(record, error, true);
    return true;
  }

  flushed(): Promise<void> {
    return this.#records.flushed();
  }

  close(): void {
    for (const timer of this.#offerTimers.values()) clearTimeout(timer);
    this.#offerTimers.clear();
    for (const pump of this.#pumps.values()) this.#stop(pump);
  }

  #offer(link: PeerLink, record: OutgoingRecord): void {
    sendQuietly(link, { type: 'file.offer', transferId: record.transferId, name: record.name, size: record.size, sha256: Buffer.from(record.sha256, 'hex') });
    if (this.#offerTimers.has(record.transferId)) return;
    // An offer nobody answers does not wait forever (the receiver may be away from the keyboard).
    const timer = setTimeout(() => {
      this.#offerTimers.delete(record.transferId);
      if (this.#pumps.has(record.transferId) || this.#records.get(record.transferId) === undefined) return;
      this.#fail(record, new SalaError('SALA_E_TRANSFER_TIMEOUT', `${record.to} did not answer the offer of ${record.name} in time.`), true);
    }, this.#context.offerTimeoutMs);
    timer.unref();
    this.#offerTimers.set(record.transferId, timer);
  }

  #clearOfferTimer(transferId: string): void {
    clearTimeout(this.#offerTimers.get(transferId));
    this.#offerTimers.delete(transferId);
  }

  /**
   * Sends bytes [offset, size) within the receiver's credit, then `file.done`. The file is not hashed
   * again: the receiver checks the whole file against the SHA-256 of the offer, so a change that
   * slips past our size and modification-time checks still fails there, before the file is stored.
   */
  async #pump(link: PeerLink, record: OutgoingRecord, offset: number): Promise<void> {
    const { transferId, size } = record;
    const previous = this.#pumps.get(transferId);
    if (previous !== undefined) this.#stop(previous);
    if (offset > size) {
      this.#fail(record, new SalaError('SALA_E_TRANSFER_CORRUPT', `${record.to} asked to resume past the end of ${record.name}.`), true);
      return;
    }
    const pump: Pump = { link, toSend: size - offset, granted: 0, credit: 0, wake: undefined, isStopped: false };
    this.#pumps.set(transferId, pump);
    const onClose = (): void => this.#stop(pump);
    link.messages.once('close', onClose);
    let file: FileHandle | undefined;
    try {
      file = await openUnchanged(record);
      let sent = offset;
      for await (const block of readBlocks(file, offset, size)) {
        for (let at = 0; at < block.length; ) {
          await this.#creditAndRoom(pump);
          const piece = block.subarray(at, at + Math.min(pump.credit, block.length - at, MAX_FILE_CHUNK_BYTES));
          link.messages.sendEncoded(encodeFileChunk(transferId, sent, piece));
          pump.credit -= piece.length;
          sent += piece.length;
          at += piece.length;
          this.#reportProgress(transferId, sent, size);
        }
      }
      // Shorter than offered (truncated meanwhile), or no longer the file offered (by path: a file
      // deleted or replaced since is not the one the user meant to send).
      if (sent !== size) throw fileChanged(record);
      const after = await statFile(record.path);
      if (after.mtimeMs !== record.mtimeMs || after.size !== size) throw fileChanged(record);
      this.#reportProgress(transferId, size, size, true);
      link.messages.send({ type: 'file.done', transferId });
    } catch (err) {
      if (pump.isStopped || isLinkGoing(link)) return; // the link went: resumed on the next one
      const error = toSalaError(err, 'SALA_E_FILE_UNREADABLE', `Cannot read ${record.path}.`);
      this.#fail(record, error, true);
    } finally {
      link.messages.off('close', onClose);
      if (this.#pumps.get(transferId) === pump) this.#pumps.delete(transferId);
      await file?.close().catch(() => undefined);
    }
  }

  /** Waits until chat has gone by, the receiver has granted credit, and the link's write queue has room. */
  async #creditAndRoom(pump: Pump): Promise<void> {
    for (;;) {
      if (pump.isStopped || isLinkGoing(pump.link)) throw new SalaError('SALA_E_CHANNEL_CLOSED', 'The link closed during the transfer.');
      // Chat on this link goes first (peer/links/link-priority.ts).
      const holdMs = bulkHoldMs(pump.link);
      if (holdMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, holdMs));
        continue;
      }
      if (pump.credit > 0 && !pump.link.channel.writableNeedDrain) return;
      await new Promise<void>((resolve) => {
        pump.wake = resolve;
        if (pump.credit > 0) pump.link.channel.once('drain', resolve);
      });
      pump.wake = undefined;
    }
  }

  #stop(pump: Pump): void {
    pump.isStopped = true;
    pump.wake?.();
  }

  #reportProgress(transferId: string, bytes: number, total: number, isFinal = false): void {
    if (this.#progress.shouldReport(transferId, isFinal)) this.#context.emit('file.progress', { transferId, bytes, total });
  }

  #finish(record: OutgoingRecord, event: 'file.declined' | 'file.completed'): void {
    this.#clearOfferTimer(record.transferId);
    const pump = this.#pumps.get(record.transferId);
    if (pump !== undefined) this.#stop(pump);
    this.#records.remove(record.transferId);
    this.#progress.forget(record.transferId);
    this.#context.record(event, `to=${record.to} id=${record.transferId} size=${record.size}`);
  }

  #fail(record: OutgoingRecord, error: SalaError, shouldTellReceiver: boolean): void {
    this.#clearOfferTimer(record.transferId);
    const pump = this.#pumps.get(record.transferId);
    if (pump !== undefined) this.#stop(pump);
    if (shouldTellReceiver) {
      const link = pump?.link ?? this.#context.linkTo(record.to);
      if (link !== undefined) sendQuietly(link, { type: 'file.cancel', transferId: record.transferId, code: error.code, message: error.message.slice(0, 1024) });
    }
    this.#records.remove(record.transferId);
    this.#progress.forget(record.transferId);
    this.#context.record('file.failed', `to=${record.to} id=${record.transferId} code=${error.code}`);
    this.#context.emit('file.failed', { transferId: record.transferId, code: error.code, message: error.message });
  }
}

async function statFile(path: string, file?: FileHandle): Promise<{ size: number; mtimeMs: number }> {
  let stats;
  try {
    stats = await (file === undefined ? stat(path) : file.stat());
  } catch (err) {
    throw unreadable(path, err);
  }
  if (!stats.isFile()) throw new SalaError('SALA_E_FILE_UNREADABLE', `${path} is not a file.`);
  return { size: stats.size, mtimeMs: Math.floor(stats.mtimeMs) };
}

function unreadable(path: string, err: unknown): SalaError {
  return new SalaError('SALA_E_FILE_UNREADABLE', `Cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`, { cause: err });
}

/** Opens the file to send, and checks (on the open file) that it is still the one offered. */
async function openUnchanged(record: OutgoingRecord): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(record.path, 'r');
  } catch (err) {
    throw unreadable(record.path, err);
  }
  try {
    const now = await statFile(record.path, file);
    if (now.size !== record.size || now.mtimeMs !== record.mtimeMs) throw fileChanged(record);
    return file;
  } catch (err) {
    await file.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The link can take no more messages: closed, or closing (the other side's encrypted close makes the
 * channel end its own half at once, a moment before it reports 'close').
 */
function isLinkGoing(link: PeerLink): boolean {
  return link.messages.isClosed || link.channel.destroyed || link.channel.writableEnded;
}

function fileChanged(record: OutgoingRecord): SalaError {
  return new SalaError('SALA_E_FILE_CHANGED', `${record.path} changed while it was being sent to ${record.to}; send it again.`);
}

/** A code from the other side, if it is one of ours; anything else is reported as a cancellation. */
export function codeOf(code: string): SalaError['code'] {
  return isSalaErrorCode(code) ? code : 'SALA_E_TRANSFER_CANCELLED';
}

export function sendQuietly(link: PeerLink, message: Parameters<PeerLink['messages']['send']>[0]): void {
  if (link.messages.isClosed) return;
  try {
    link.messages.send(message);
  } catch {
    // the link is closing; the transfer resumes on the next one
  }
}
