import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { hashFile, READ_BLOCK_BYTES, readBlocks } from '../../../../peer/files/file-hash.js';
import { tempDir } from '../../../helpers/rendezvous.js';

async function fileWith(content: Buffer) {
  const path = join(tempDir('sala-blocks-'), 'f.bin');
  writeFileSync(path, content);
  const file = await open(path, 'r');
  onTestFinished(() => file.close());
  return { path, file };
}

describe('readBlocks', () => {
  it('gives bytes [start, end) in blocks of at most READ_BLOCK_BYTES, each its own buffer', async () => {
    const content = randomBytes(2 * READ_BLOCK_BYTES + 12_345);
    const { file } = await fileWith(content);
    const blocks: Buffer[] = [];
    for await (const block of readBlocks(file, 100, content.length - 7)) blocks.push(block);
    expect(blocks.every((b) => b.length <= READ_BLOCK_BYTES)).toBe(true);
    expect(new Set(blocks.map((b) => b.buffer)).size).toBe(blocks.length);
    expect(Buffer.concat(blocks).equals(content.subarray(100, content.length - 7))).toBe(true);
  });

  it('ends early, without an error, when the file is shorter than asked', async () => {
    const content = randomBytes(5000);
    const { file } = await fileWith(content);
    const blocks: Buffer[] = [];
    for await (const block of readBlocks(file, 0, 3 * READ_BLOCK_BYTES)) blocks.push(block);
    expect(Buffer.concat(blocks).equals(content)).toBe(true);
  });

  it('lets a caller stop after the first block with the read ahead settled before the file is closed', async () => {
    const { file } = await fileWith(randomBytes(3 * READ_BLOCK_BYTES));
    for await (const block of readBlocks(file, 0, 3 * READ_BLOCK_BYTES)) {
      expect(block.length).toBe(READ_BLOCK_BYTES);
      break;
    }
    await file.close(); // no read is left running on it
  });
});

describe('hashFile', () => {
  it('gives the SHA-256 of the file, and of an empty one', async () => {
    const content = randomBytes(READ_BLOCK_BYTES + 1);
    const { path } = await fileWith(content);
    expect((await hashFile(path, content.length)).equals(createHash('sha256').update(content).digest())).toBe(true);
    const { path: empty } = await fileWith(Buffer.alloc(0));
    expect((await hashFile(empty, 0)).equals(createHash('sha256').digest())).toBe(true);
  });

  it('rejects when the file is shorter than the size given', async () => {
    const { path } = await fileWith(randomBytes(100));
    await expect(hashFile(path, 200)).rejects.toThrow(/100 bytes, expected 200/);
  });
});
