export { FrameDecoder, FRAME_HEADER_BYTES, encodeFrame, encodeFrameHeader } from './frame-decoder.js';
export { packMessage, unpackUnknown } from './msgpack.js';
export { field, parseShape, isPlainObject, type Field, type Infer, type Shape } from './schema.js';
export {
  decodeMessage,
  encodeMessage,
  parseMessage,
  MESSAGE_TYPES,
  type MessageOf,
  type MessageType,
  type WireMessage,
} from './messages.js';
