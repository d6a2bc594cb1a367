export { FrameDecoder, FRAME_HEADER_BYTES, encodeFrame, encodeFrameHeader } from './frame-decoder.js';
export { packMessage, unpackUnknown } from './msgpack.js';
export { field, parseShape, isPlainObject, type Field, type FieldValue, type Infer, type Shape } from './schema.js';
export {
  decodeMessage,
  encodeMessage,
  parseMessage,
  MESSAGE_TYPES,
  ENDPOINT,
  DIRECTORY_ENTRY,
  TICKET_FIELD,
  REVOCATION_FIELD,
  LOG_EVENT,
  MAX_LOG_BATCH,
  MAX_PING_DATA_BYTES,
  MAX_CHAT_TEXT_BYTES,
  MAX_FILE_CHUNK_BYTES,
  MAX_FILE_CREDIT_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_DIRECTORY_ENTRIES,
  MAX_REVOCATIONS,
  MAX_OFFLINE_ENTRIES,
  MAX_ENDPOINTS,
  type MessageOf,
  type MessageType,
  type WireMessage,
  type Endpoint,
  type SessionSummary,
  type DirectoryEntry,
  type LogEvent,
} from './messages.js';
export { CLIENT_HELLO_SHAPE, decodeClientHello, encodeClientHello, type ClientHello } from './hello.js';
export { scanMsgpack, MAX_MSGPACK_DEPTH } from './msgpack-scan.js';
