import { Packr, type Options } from 'msgpackr';
import { SalaError } from '../errors.js';
import { scanMsgpack } from './msgpack-scan.js';

/**
 * One msgpackr configuration for the whole protocol. Records and structured clones are off
 * (they let the sender define shapes and references we would then have to trust); maps decode to
 * plain objects and binary to Buffers. msgpackr ≥ 1.10.1 renames a `__proto__` key instead of
 * setting the prototype (CVE-2023-52079), and the strict shapes then refuse the renamed key.
 */
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'number',
  // An absent optional field is left out of the map, never written as msgpackr's `undefined`
  // extension, which the decoder (rightly) refuses.
  skipValues: [undefined],
} as Options & { skipValues: unknown[] }); // skipValues exists in msgpackr ≥ 1.11 but not in its types

export function packMessage(value: unknown): Buffer {
  return packr.pack(value);
}

/**
 * Decodes one msgpack value. The bytes are first checked by `scanMsgpack` (the subset Sala uses,
 * bounded depth, unique string keys, nothing after the value); whatever msgpackr still throws
 * becomes SALA_E_PROTOCOL_MALFORMED. The result stays `unknown` until a validator has looked at it.
 */
export function unpackUnknown(bytes: Uint8Array): unknown {
  scanMsgpack(bytes);
  try {
    return packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new SalaError('SALA_E_PROTOCOL_MALFORMED', 'A message could not be decoded.', { cause: err });
  }
}
