import { SalaError, type WireMessage } from '../../common/index.js';
import type { PeerLink } from '../links/link-manager.js';
import type { FileContext } from './file-context.js';
import { IncomingTransfers, type IncomingOptions } from './incoming-transfers.js';
import { OutgoingTransfers } from './outgoing-transfers.js';

/**
 * File transfer over the direct links: the sending and receiving halves, with the link messages
 * routed to the right one (docs/protocol.md 4.5). A transfer id names one transfer on both ends.
 */
export class FileService {
  readonly #outgoing: OutgoingTransfers;
  readonly #incoming: IncomingTransfers;

  constructor(context: FileContext, options: IncomingOptions) {
    this.#outgoing = new OutgoingTransfers(context);
    this.#incoming = new IncomingTransfers(context, options);
  }

  /** Starts serving a link: its file messages, and offers (again) whatever waits for that user. */
  attach(link: PeerLink): void {
    link.messages.on('message', (message) => this.#route(link, message));
    link.messages.once('close', () => this.#incoming.onLinkDown(link));
    this.#outgoing.onLinkUp(link);
  }

  sendFile(to: string, path: string, options: { name?: string | undefined; ref?: string | undefined } = {}): Promise<{ transferId: string }> {
    return this.#outgoing.send(to, path, options);
  }

  async acceptFile(transferId: string): Promise<void> {
    await this.#incoming.accept(this.#incomingId(transferId));
  }

  async declineFile(transferId: string): Promise<void> {
    await this.#incoming.decline(this.#incomingId(transferId));
  }

  /** Cancels a transfer from either side: both get `file.failed` SALA_E_TRANSFER_CANCELLED. */
  async cancelFile(transferId: string, by: string): Promise<void> {
    const error = new SalaError('SALA_E_TRANSFER_CANCELLED', `The transfer was cancelled by ${by}.`);
    if (this.#outgoing.cancel(transferId, error)) return;
    const incoming = this.#incoming.resolveId(transferId);
    if (incoming !== undefined && (await this.#incoming.cancel(incoming, error))) return;
    throw new SalaError('SALA_E_TRANSFER_UNKNOWN', `No transfer ${transferId.slice(0, 40)} is in progress.`);
  }

  /** Users a transfer waits for (to offer, or to resume from). */
  pendingUsers(): string[] {
    return [...new Set([...this.#outgoing.pendingRecipients(), ...this.#incoming.pendingSenders()])];
  }

  hasPending(user: string): boolean {
    return this.#outgoing.hasPending(user) || this.#incoming.hasPending(user);
  }

  close(): void {
    this.#outgoing.close();
    this.#incoming.close();
  }

  /** Resolves when the saved transfer lists hold the latest state. */
  async flushed(): Promise<void> {
    await Promise.all([this.#outgoing.flushed(), this.#incoming.flushed()]);
  }

  #incomingId(typed: string): string {
    const id = this.#incoming.resolveId(typed);
    if (id === undefined) throw new SalaError('SALA_E_TRANSFER_UNKNOWN', `No file offer ${typed.slice(0, 40)} is waiting for an answer.`);
    return id;
  }

  #route(link: PeerLink, message: WireMessage): void {
    switch (message.type) {
      case 'file.offer':
      case 'file.chunk':
      case 'file.done':
        this.#incoming.onMessage(link, message);
        return;
      case 'file.accept':
      case 'file.decline':
      case 'file.credit':
      case 'file.complete':
        this.#outgoing.onMessage(link, message);
        return;
      case 'file.cancel':
        // Either side may cancel: the id tells which half holds the transfer.
        if (this.#outgoing.has(message.transferId)) this.#outgoing.onMessage(link, message);
        else this.#incoming.onMessage(link, message);
        return;
      default:
        return;
    }
  }
}
