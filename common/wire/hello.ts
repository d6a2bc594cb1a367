import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from './msgpack.js';
import { field, parseShape, type Infer } from './schema.js';

/**
 * The initiator's payload in handshake msg 3 when a peer talks to the rendezvous server: what it
 * wants (log in, register, resume a session), as whom, and the proof that it holds its device key.
 * The password travels only here — encrypted, and only after the client has checked the server's
 * key (msg 2), so an impostor never receives it.
 */
export const CLIENT_HELLO_SHAPE = {
  v: field.uint({ max: 255 }),
  op: field.oneOf('login', 'register', 'resume'),
  /** As typed; the server normalises it (common/names.ts). */
  user: field.string({ maxBytes: 128, minBytes: 1 }),
  password: field.optional(field.string({ maxBytes: 1024 })),
  sessionId: field.optional(field.string({ maxBytes: 64, minBytes: 1 })),
  sigPk: field.bytes({ maxBytes: 32, exactBytes: 32 }),
  /** signLoginProof(device signing key, h2). */
  pop: field.bytes({ maxBytes: 64, exactBytes: 64 }),
} as const;

export type ClientHello = Infer<typeof CLIENT_HELLO_SHAPE>;

export function encodeClientHello(hello: ClientHello): Buffer {
  return packMessage({ ...hello });
}

/** Throws SALA_E_HANDSHAKE_FAILED for anything that is not a well-formed hello. */
export function decodeClientHello(payload: Uint8Array): ClientHello {
  try {
    const hello = parseShape(CLIENT_HELLO_SHAPE, unpackUnknown(payload), 'hello');
    if (hello.v !== 1) throw new Error(`unsupported hello version ${hello.v}`);
    return hello;
  } catch (err) {
    throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.', { cause: err });
  }
}
