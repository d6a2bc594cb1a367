import { encodeMessage } from '../../common/index.js';

/** MessagePack `bin 8` with no bytes: what an empty `data` field ends the encoded envelope with. */
const EMPTY_BIN = [0xc4, 0x00] as const;

/**
 * A `file.chunk` message as two pieces, its envelope and the file data itself: the same bytes as
 * `encodeMessage({ type: 'file.chunk', transferId, offset, data })`, without copying 64 KiB of data
 * into the encoder (the channel seals the pieces where they are). `data` goes last in the map, so
 * the envelope is the message encoded with an empty `data`, its `bin` header widened to the length.
 */
export function encodeFileChunk(transferId: string, offset: number, data: Uint8Array): [Buffer, Uint8Array] {
  const empty = encodeMessage({ type: 'file.chunk', transferId, offset, data: new Uint8Array(0) });
  const at = empty.length - EMPTY_BIN.length;
  if (empty[at] !== EMPTY_BIN[0] || empty[at + 1] !== EMPTY_BIN[1]) throw new Error('file.chunk envelope: data is not the last field');
  // The narrowest `bin` header for the length, as every MessagePack encoder writes it.
  const headerBytes = data.length <= 0xff ? 2 : data.length <= 0xffff ? 3 : 5;
  const envelope = Buffer.allocUnsafe(at + headerBytes);
  empty.copy(envelope, 0, 0, at);
  if (headerBytes === 2) {
    envelope[at] = 0xc4;
    envelope.writeUInt8(data.length, at + 1);
  } else if (headerBytes === 3) {
    envelope[at] = 0xc5;
    envelope.writeUInt16BE(data.length, at + 1);
  } else {
    envelope[at] = 0xc6;
    envelope.writeUInt32BE(data.length, at + 1);
  }
  return [envelope, data];
}
