import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PartHash } from '../../../../peer/files/part-hash.js';
import { tempDir } from '../../../helpers/rendezvous.js';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A `.part` holding `held` bytes of `content`, and a PartHash over it. */
async function partOf(content: Buffer, held: number): Promise<{ path: string; hash: PartHash }> {
  const path = join(tempDir('sala-part-'), 'x.part');
  writeFileSync(path, content.subarray(0, held));
  const file = held > 0 ? await open(path, 'r') : undefined;
  return { path, hash: new PartHash(file, held) };
}

/** Chunks arrive (update), then reach the file (append + written), as the receiver does it. */
function receive(path: string, hash: PartHash, content: Buffer, from: number, to: number, chunkBytes: number): void {
  for (let at = from; at < to; at += chunkBytes) {
    const chunk = content.subarray(at, Math.min(to, at + chunkBytes));
    hash.update(chunk);
    appendFileSync(path, chunk);
    hash.written(at + chunk.length);
  }
}

describe('PartHash', () => {
  it('hashes a fresh transfer as the chunks arrive, reading nothing back', async () => {
    const content = randomBytes(300_000);
    const { path, hash } = await partOf(content, 0);
    receive(path, hash, content, 0, content.length, 64 * 1024);
    expect(await hash.digest()).toBe(sha256(content));
  });

  it('gives the whole-file hash when chunks arrive and are written while the held prefix is still being read', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const held = 2 * 1024 * 1024 + 5;
    const { path, hash } = await partOf(content, held);
    // All of it arrives before the reader has read a byte: everything is read back from the file.
    receive(path, hash, content, held, content.length, 64 * 1024);
    expect(await hash.digest()).toBe(sha256(content));
  });

  it('switches to hashing arriving chunks once the reader has caught up', async () => {
    const content = randomBytes(1_500_000);
    const held = 1_000_000;
    const { path, hash } = await partOf(content, held);
    receive(path, hash, content, held, 1_200_000, 50_000);
    await hash.caughtUp();
    // From here on, chunks are hashed from memory: one that never reaches the file still counts.
    const rest = content.subarray(1_200_000);
    hash.update(rest);
    expect(await hash.digest()).toBe(sha256(content));
  });

  it('waits for a chunk that arrived but is not written yet, and reads it once it is', async () => {
    const content = randomBytes(400_000);
    const held = 300_000;
    const { path, hash } = await partOf(content, held);
    const late = content.subarray(held);
    hash.update(late); // arrived; its write has not completed
    let isDone = false;
    const digest = hash.digest().then((d) => {
      isDone = true;
      return d;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(isDone).toBe(false);
    appendFileSync(path, late);
    hash.written(content.length);
    expect(await digest).toBe(sha256(content));
  });

  it('rejects when the held bytes cannot all be read back (the .part shrank)', async () => {
    const path = join(tempDir('sala-part-'), 'x.part');
    writeFileSync(path, randomBytes(200_000));
    const file = await open(path, 'r');
    truncateSync(path, 1000);
    await expect(new PartHash(file, 200_000).digest()).rejects.toThrow(/shorter/);
  });

  it('stops reading when stopped, and says so to whoever waits', async () => {
    const content = randomBytes(100_000);
    const { hash } = await partOf(content, 100_000);
    hash.update(Buffer.alloc(10)); // never written: the reader would wait for it
    hash.stop();
    hash.stop();
    await expect(hash.caughtUp()).rejects.toThrow(/stopped/);
  });
});
