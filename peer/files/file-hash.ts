import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { statfs } from 'node:fs/promises';

/** Read size for hashing and sending: one file chunk, so a read maps to one message. */
export const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Feeds bytes [0, end) of a file into `hash` (a new SHA-256 by default), streamed: memory stays at
 * one read buffer whatever the size. Rejects if the file is shorter than `end`.
 */
export async function hashFilePrefix(path: string, end: number, hash: Hash = createHash('sha256')): Promise<Hash> {
  if (end === 0) return hash;
  let seen = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: end - 1, highWaterMark: READ_CHUNK_BYTES })) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    seen += bytes.length;
  }
  if (seen !== end) throw new Error(`the file has ${seen} bytes, expected ${end}`);
  return hash;
}

/** The SHA-256 of a whole file of `size` bytes. */
export async function hashFile(path: string, size: number): Promise<Buffer> {
  return (await hashFilePrefix(path, size)).digest();
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
