import { createHash, randomFillSync, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

/** Random data is written in blocks this large; each block is freshly random. */
const BLOCK_BYTES = 1024 * 1024;

function* randomBlocks(bytes: number, hash: Hash): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= BLOCK_BYTES) {
    // A new buffer each time: the file stream may still hold the previous one.
    const block = randomFillSync(Buffer.allocUnsafe(Math.min(BLOCK_BYTES, left)));
    hash.update(block);
    yield block;
  }
}

/**
 * Writes `bytes` random bytes to a new file at `path` and returns their SHA-256, so a received
 * copy can be checked without reading the source again.
 */
export async function createRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(randomBlocks(bytes, hash), createWriteStream(path, { flags: 'wx' }));
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: BLOCK_BYTES })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
