import { SalaError } from '../errors.js';

/**
 * A structural pass over untrusted MessagePack before msgpackr sees it. Sala's messages use only
 * nil, booleans, numbers, strings, binary, arrays and maps with string keys, so anything else is
 * refused here: extension types (msgpackr gives several of them meanings — records, bundled strings,
 * timestamps — one of which could send its decoder into an endless loop), the reserved byte 0xc1,
 * non-string or repeated map keys (two decoders must never read one frame as two messages),
 * nesting deeper than `maxDepth`, declared lengths beyond the bytes present, and anything after the
 * first value. It is iterative, so hostile nesting cannot exhaust the stack.
 */
export const MAX_MSGPACK_DEPTH = 16;

interface Container {
  /** Items (arrays) or key/value pairs (maps) still to read. */
  remaining: number;
  keys: Set<string> | undefined;
  isKeyNext: boolean;
}

function malformed(why: string): SalaError {
  return new SalaError('SALA_E_PROTOCOL_MALFORMED', `A message could not be decoded: ${why}.`);
}

export function scanMsgpack(bytes: Uint8Array, maxDepth = MAX_MSGPACK_DEPTH): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Container[] = [];
  let pos = 0;
  let hasTopLevel = false;

  const need = (n: number): void => {
    if (pos + n > bytes.length) throw malformed('it ends before a declared length');
  };
  const readLength = (width: 1 | 2 | 4): number => {
    need(width);
    const value = width === 1 ? view.getUint8(pos) : width === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += width;
    return value;
  };

  for (;;) {
    const parent = stack[stack.length - 1];
    if (parent === undefined) {
      if (hasTopLevel) break;
      hasTopLevel = true;
    } else if (parent.remaining === 0) {
      stack.pop();
      continue;
    }
    const isKey = parent?.keys !== undefined && parent.isKeyNext;
    if (parent !== undefined) {
      if (parent.keys === undefined) parent.remaining -= 1;
      else {
        if (!parent.isKeyNext) parent.remaining -= 1;
        parent.isKeyNext = !parent.isKeyNext;
      }
    }

    need(1);
    const type = bytes[pos++] as number;
    let stringBytes = -1;
    let container: { count: number; isMap: boolean } | undefined;

    if (type <= 0x7f || type >= 0xe0) {
      // fixint
    } else if (type <= 0x8f) container = { count: type & 0x0f, isMap: true };
    else if (type <= 0x9f) container = { count: type & 0x0f, isMap: false };
    else if (type <= 0xbf) stringBytes = type & 0x1f;
    else {
      switch (type) {
        case 0xc0: case 0xc2: case 0xc3:
          break;
        case 0xc4: case 0xc5: case 0xc6: {
          const length = readLength(type === 0xc4 ? 1 : type === 0xc5 ? 2 : 4);
          need(length);
          pos += length;
          break;
        }
        case 0xca: case 0xce: case 0xd2:
          need(4);
          pos += 4;
          break;
        case 0xcb: case 0xcf: case 0xd3:
          need(8);
          pos += 8;
          break;
        case 0xcc: case 0xd0:
          need(1);
          pos += 1;
          break;
        case 0xcd: case 0xd1:
          need(2);
          pos += 2;
          break;
        case 0xd9: case 0xda: case 0xdb:
          stringBytes = readLength(type === 0xd9 ? 1 : type === 0xda ? 2 : 4);
          break;
        case 0xdc: case 0xdd:
          container = { count: readLength(type === 0xdc ? 2 : 4), isMap: false };
          break;
        case 0xde: case 0xdf:
          container = { count: readLength(type === 0xde ? 2 : 4), isMap: true };
          break;
        default:
          // 0xc1 (never used), 0xc7–0xc9 and 0xd4–0xd8 (extensions)
          throw malformed(`type byte 0x${type.toString(16)} is not used by Sala`);
      }
    }

    if (isKey && stringBytes < 0) throw malformed('a map key is not a string');
    if (stringBytes >= 0) {
      need(stringBytes);
      if (isKey && parent?.keys !== undefined) {
        const key = Buffer.from(bytes.buffer, bytes.byteOffset + pos, stringBytes).toString('utf8');
        if (parent.keys.has(key)) throw malformed('a map repeats a key');
        parent.keys.add(key);
      }
      pos += stringBytes;
    }
    if (container !== undefined) {
      if (stack.length >= maxDepth) throw malformed(`it nests deeper than ${maxDepth} levels`);
      // Every item takes at least one byte: a count beyond the bytes left is a lie, refused now.
      const minimumBytes = container.isMap ? container.count * 2 : container.count;
      if (minimumBytes > bytes.length - pos) throw malformed('it ends before a declared length');
      stack.push({ remaining: container.count, keys: container.isMap ? new Set() : undefined, isKeyNext: true });
    }
  }
  if (pos !== bytes.length) throw malformed('a frame must hold exactly one value');
}
