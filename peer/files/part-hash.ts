import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { READ_BLOCK_BYTES } from './file-hash.js';

/**
 * The SHA-256 of a `.part` file that is being appended to, for a resumed transfer that must not
 * wait for its prefix to be hashed before it asks for more: the transfer is accepted at once, the
 * bytes already held are read back and hashed in the background, and new chunks go to disk as they
 * come. While the reader is behind, it reads the new bytes back too, once they are written; when it
 * has caught up with everything received, it stops and chunks are hashed as they arrive. Memory stays
 * at one read buffer; a fresh transfer (nothing held) never reads at all.
 */
export class PartHash {
  readonly #hash = createHash('sha256');
  /** Bytes hashed, received from the sender (held + chunks), and known to be written to the file. */
  #hashedTo = 0;
  #receivedTo: number;
  #writtenTo: number;
  #isLive: boolean;
  #isStopped = false;
  #wakeReader: (() => void) | undefined;
  /** Settles when the reader has caught up (or at once when nothing was held); rejects on a read error. */
  readonly #caughtUp: Promise<void>;

  /** `file` is the `.part` opened for reading when `heldBytes` > 0; the hash closes it when done. */
  constructor(file: FileHandle | undefined, heldBytes: number) {
    this.#receivedTo = heldBytes;
    this.#writtenTo = heldBytes;
    this.#isLive = heldBytes === 0;
    if (file === undefined && !this.#isLive) throw new Error('PartHash: held bytes to hash but no file to read them from');
    this.#caughtUp = file === undefined ? Promise.resolve() : this.#catchUp(file);
    // A failure is reported through caughtUp(); until someone asks, it is not an unhandled rejection.
    this.#caughtUp.catch(() => undefined);
  }

  /** The next bytes of the file, in order, as they arrive (before they are written). */
  update(data: Uint8Array): void {
    this.#receivedTo += data.length;
    if (!this.#isLive) return; // on its way to disk: the reader hashes it from there
    this.#hash.update(data);
    this.#hashedTo += data.length;
  }

  /** Bytes [0, bytes) are in the file (a write completed). */
  written(bytes: number): void {
    this.#writtenTo = bytes;
    this.#wake();
  }

  /** Resolves once everything received is hashed; rejects if the held bytes could not be read back. */
  caughtUp(): Promise<void> {
    return this.#caughtUp;
  }

  /** The hex digest of everything received; call once, after the last write completed. */
  async digest(): Promise<string> {
    await this.#caughtUp;
    return this.#hash.digest('hex');
  }

  /** Ends the background reading (the transfer stopped); idempotent. */
  stop(): void {
    this.#isStopped = true;
    this.#wake();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  async #catchUp(file: FileHandle): Promise<void> {
    try {
      const block = Buffer.allocUnsafe(READ_BLOCK_BYTES);
      while (!this.#isStopped) {
        // Checked and switched in one synchronous step: no chunk can slip in between.
        if (this.#hashedTo === this.#receivedTo) {
          this.#isLive = true;
          return;
        }
        if (this.#hashedTo < this.#writtenTo) {
          const want = Math.min(block.length, this.#writtenTo - this.#hashedTo);
          const { bytesRead } = await file.read(block, 0, want, this.#hashedTo);
          if (bytesRead === 0) throw new Error(`the file is shorter than the ${this.#writtenTo} bytes written to it`);
          this.#hash.update(block.subarray(0, bytesRead));
          this.#hashedTo += bytesRead;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.#wakeReader = resolve;
        });
      }
      throw new Error('stopped');
    } finally {
      await file.close();
    }
  }
}
