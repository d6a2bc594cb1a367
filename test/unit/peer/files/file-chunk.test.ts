import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../../../common/index.js';
import { encodeFileChunk } from '../../../../peer/files/file-chunk.js';

describe('encodeFileChunk', () => {
  it('gives an envelope and the data whose concatenation is byte for byte encodeMessage\'s file.chunk', () => {
    // Every MessagePack bin width: 8 (up to 255), 16 (up to 65535), 32 (beyond).
    for (const bytes of [0, 1, 255, 256, 65_535, 65_536]) {
      const data = randomBytes(bytes);
      for (const offset of [0, 65_536, 2 ** 40 + 3]) {
        const [envelope, piece] = encodeFileChunk('3f2a-transfer', offset, data);
        expect(piece).toBe(data);
        const whole = encodeMessage({ type: 'file.chunk', transferId: '3f2a-transfer', offset, data });
        expect(Buffer.concat([envelope, piece]).equals(whole)).toBe(true);
      }
    }
  });

  it('decodes as the file.chunk it describes', () => {
    const data = randomBytes(64 * 1024);
    const message = decodeMessage(Buffer.concat(encodeFileChunk('id-1', 7, data)));
    expect(message).toMatchObject({ type: 'file.chunk', transferId: 'id-1', offset: 7 });
    expect(Buffer.from((message as { data: Uint8Array }).data).equals(data)).toBe(true);
  });
});
