import { Packr } from 'msgpackr';
import { SalaError } from '../errors.js';

/**
 * One msgpackr configuration for the whole protocol. Records and structured clones are off
 * (they let the sender define shapes and references we would then have to trust); maps decode to
 * plain objects and binary to Buffers. msgpackr ≥ 1.10.1 refuses `__proto__` keys (CVE-2023-52079).
 */
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'number',
});

export function packMessage(value: unknown): Buffer {
  return packr.pack(value);
}

/**
 * Decodes one msgpack value. Anything msgpackr throws (bad bytes, impossible lengths, nesting that
 * exhausts the stack) becomes SALA_E_PROTOCOL_MALFORMED. The result stays `unknown` until a
 * validator has looked at it. Trailing bytes after the value are refused: one frame, one value.
 */
export function unpackUnknown(bytes: Uint8Array): unknown {
  let values: unknown[];
  try {
    values = packr.unpackMultiple(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) ?? [];
  } catch (err) {
    throw new SalaError('SALA_E_PROTOCOL_MALFORMED', 'A message could not be decoded.', { cause: err });
  }
  if (values.length !== 1) {
    throw new SalaError(
      'SALA_E_PROTOCOL_MALFORMED',
      `A frame must hold exactly one MessagePack value; it held ${values.length}.`,
    );
  }
  return values[0];
}
