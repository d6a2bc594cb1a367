import { SalaError } from '../../common/index.js';

/** CONTRACT.md: group texts up to 8 KiB of UTF-8. */
export const MAX_GROUP_TEXT_BYTES = 8 * 1024;

/**
 * What a group message carries once its fragments are put back together: one kind byte, then the
 * text as UTF-8. Explicit rather than msgpack because there is one field and a receiver must check
 * every byte anyway; the kind byte leaves room for other kinds (a receiver drops unknown ones).
 *
 *     kind u8 (1 = text) | text UTF-8
 *
 * The message id is the fragments' 16-byte msgId (hex), and its time the signed header time of the
 * datagram that carried its first fragment, so neither needs to be repeated here.
 */
const KIND_TEXT = 1;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Throws SALA_E_MESSAGE_TOO_LARGE above MAX_GROUP_TEXT_BYTES. */
export function encodeGroupText(text: string): Uint8Array {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_GROUP_TEXT_BYTES) {
    throw new SalaError('SALA_E_MESSAGE_TOO_LARGE', `The group message is ${bytes} bytes; the limit is ${MAX_GROUP_TEXT_BYTES} (8 KiB). Send a shorter message.`);
  }
  const out = new Uint8Array(1 + bytes);
  out[0] = KIND_TEXT;
  Buffer.from(out.buffer, out.byteOffset + 1, bytes).write(text, 'utf8');
  return out;
}

/** Throws SALA_E_GROUP_DATAGRAM_INVALID for an unknown kind, bad UTF-8 or an oversized text. */
export function decodeGroupText(bytes: Uint8Array): string {
  if (bytes.length < 1 || bytes[0] !== KIND_TEXT) throw invalid('its message is of an unknown kind');
  if (bytes.length - 1 > MAX_GROUP_TEXT_BYTES) throw invalid('its text is over 8 KiB');
  try {
    return strictUtf8.decode(bytes.subarray(1));
  } catch (err) {
    throw new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', 'A group message was dropped: its text is not valid UTF-8.', { cause: err });
  }
}

function invalid(why: string): SalaError {
  return new SalaError('SALA_E_GROUP_DATAGRAM_INVALID', `A group message was dropped: ${why}.`);
}
