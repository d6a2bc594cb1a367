import { createHash } from 'node:crypto';
import { open, statfs, type FileHandle } from 'node:fs/promises';

/**
 * Bytes per disk read when hashing or sending: a 64 KiB read costs a thread-pool round trip for
 * every chunk (1.2 CPU-s per GiB on the sender, docs/performance.md §8.2); 1 MiB keeps memory
 * small and bounded and the round trips few. Chunks on the wire stay at most 64 KiB.
 */
export const READ_BLOCK_BYTES = 1024 * 1024;

/**
 * Bytes [start, end) of an open file in blocks of up to READ_BLOCK_BYTES, the next read already
 * under way while the caller uses the current block (at most two blocks in memory). Every block is a
 * new buffer, so the caller may hand it on (the channel seals file data where it lies). Ends early
 * when the file is shorter: the caller compares what it got with what it expected.
 */
export async function* readBlocks(file: FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  const readAt = (position: number): Promise<Buffer> => {
    const block = Buffer.allocUnsafe(Math.min(READ_BLOCK_BYTES, end - position));
    const read = file.read(block, 0, block.length, position).then(({ bytesRead }) => block.subarray(0, bytesRead));
    // A read ahead may fail while the caller is still busy with the block before: it is reported
    // when the caller gets to it (await below), never as an unhandled rejection meanwhile.
    read.catch(() => undefined);
    return read;
  };
  let next = start < end ? readAt(start) : undefined;
  try {
    let position = start;
    while (next !== undefined) {
      const block = await next;
      next = undefined;
      if (block.length === 0) return;
      position += block.length;
      if (position < end) next = readAt(position);
      yield block;
    }
  } finally {
    // A consumer that stops early must not leave a read running on a handle it is about to close.
    await next?.catch(() => undefined);
  }
}

/**
 * The SHA-256 of a file of `size` bytes, streamed: memory stays at two read blocks whatever the
 * size. Rejects if the file is shorter than `size`.
 */
export async function hashFile(path: string, size: number): Promise<Buffer> {
  const hash = createHash('sha256');
  if (size === 0) return hash.digest();
  const file = await open(path, 'r');
  try {
    let seen = 0;
    for await (const block of readBlocks(file, 0, size)) {
      hash.update(block);
      seen += block.length;
    }
    if (seen !== size) throw new Error(`the file has ${seen} bytes, expected ${size}`);
    return hash.digest();
  } finally {
    await file.close();
  }
}

/** Free bytes for an unprivileged user in the file system holding `dir` (undefined when unknown). */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const stats = await statfs(dir);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch {
    return undefined;
  }
}
