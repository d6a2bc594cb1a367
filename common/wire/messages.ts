import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from './msgpack.js';
import { field, invalidField, isPlainObject, parseShape, type Infer, type Shape } from './schema.js';

/**
 * Every message that travels inside a secure channel, as one discriminated union on `type`.
 * A message enters the program only through `decodeMessage`, which validates it against its shape.
 * Adding a type: add its shape here, document it in docs/protocol.md, add a negative test.
 */
const MESSAGE_SHAPES = {
  /** Liveness and round-trip probe; the receiver answers with a `pong` carrying the same id and data. */
  ping: {
    id: field.uint(),
    data: field.optional(field.bytes({ maxBytes: 64 * 1024 })),
  },
  pong: {
    id: field.uint(),
    data: field.optional(field.bytes({ maxBytes: 64 * 1024 })),
  },
  /** A fatal problem the sender reports before closing; `code` is a SALA_E_… name. */
  error: {
    code: field.string({ maxBytes: 64, minBytes: 1 }),
    message: field.string({ maxBytes: 1024 }),
  },
} as const satisfies Record<string, Shape>;

type Shapes = typeof MESSAGE_SHAPES;
export type MessageType = keyof Shapes;
export type WireMessage = { [T in MessageType]: { type: T } & Infer<Shapes[T]> }[MessageType];
export type MessageOf<T extends MessageType> = Extract<WireMessage, { type: T }>;

export const MESSAGE_TYPES: readonly MessageType[] = Object.freeze(Object.keys(MESSAGE_SHAPES) as MessageType[]);

function isMessageType(value: string): value is MessageType {
  return Object.hasOwn(MESSAGE_SHAPES, value);
}

/** Turns a decoded value into a WireMessage or throws a SalaError naming the problem. */
export function parseMessage(value: unknown): WireMessage {
  if (!isPlainObject(value)) throw new SalaError('SALA_E_PROTOCOL_MALFORMED', 'A message must be a map.');
  const { type, ...rest } = value;
  if (typeof type !== 'string') throw invalidField('type', 'must be a string');
  if (!isMessageType(type)) {
    throw new SalaError(
      'SALA_E_PROTOCOL_UNKNOWN_TYPE',
      `Unknown message type "${type.slice(0, 64)}"; the other side may run a newer version of Sala.`,
    );
  }
  const body = parseShape(MESSAGE_SHAPES[type], rest, type);
  return { type, ...body } as WireMessage;
}

export function decodeMessage(bytes: Uint8Array): WireMessage {
  return parseMessage(unpackUnknown(bytes));
}

export function encodeMessage(message: WireMessage): Buffer {
  return packMessage(message);
}
