import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from './msgpack.js';
import { field, invalidField, isPlainObject, parseShape, type FieldValue, type Infer, type Shape } from './schema.js';

/**
 * Directory entries per message. An entry is at most ~750 bytes (8 endpoints of up to 64-byte
 * hosts), so 100 of them stay well inside one 128 KiB frame; larger directories go out as several
 * messages (the welcome's first part, then `directory.update`s).
 */
export const MAX_DIRECTORY_ENTRIES = 100;
/** Offline notices ({user, sessionId}, under 100 bytes each) per message. */
export const MAX_OFFLINE_ENTRIES = 1000;
/** Endpoints one peer may announce. */
export const MAX_ENDPOINTS = 8;
/** Revocations (~220 bytes each) in one welcome; more follow as single `revoked` messages. */
export const MAX_REVOCATIONS = 256;
export const MAX_LOG_BATCH = 256;
/** Members listed in one group.state (the server's cap per group). */
export const MAX_GROUP_MEMBERS = 256;
export const MAX_PING_DATA_BYTES = 256;
/** CONTRACT.md: 1:1 texts up to 64 KiB of UTF-8. */
export const MAX_CHAT_TEXT_BYTES = 64 * 1024;
/** File data per `file.chunk`: 64 KiB keeps a chunk (plus envelope and tag) well inside one frame. */
export const MAX_FILE_CHUNK_BYTES = 64 * 1024;
/** An offered file name, as the sender spelled it (the receiver makes it safe). */
export const MAX_FILE_NAME_BYTES = 255;
/** The most credit one grant may give: the receiver's window is far smaller; this only bounds the field. */
export const MAX_FILE_CREDIT_BYTES = 64 * 1024 * 1024;

const USER = field.string({ maxBytes: 32, minBytes: 2 });
const SESSION_ID = field.string({ maxBytes: 64, minBytes: 1 });
const EVENT_ID = field.string({ maxBytes: 64, minBytes: 1 });
const KEY = field.bytes({ maxBytes: 32, exactBytes: 32 });

export const ENDPOINT = field.object({
  /** An IPv4 or IPv6 literal (never a name to resolve). */
  host: field.string({ maxBytes: 64, minBytes: 2 }),
  port: field.uint({ max: 65_535 }),
});

export const SESSION_SUMMARY = field.object({
  sessionId: SESSION_ID,
  /** The client address as the server saw it. */
  address: field.string({ maxBytes: 64 }),
  /** ISO 8601 UTC. */
  since: field.string({ maxBytes: 32 }),
});

export const DIRECTORY_ENTRY = field.object({
  user: USER,
  sessionId: SESSION_ID,
  addresses: field.array(ENDPOINT, { maxItems: MAX_ENDPOINTS }),
  dhPk: KEY,
  sigPk: KEY,
  /** ms since the epoch, server time. */
  since: field.uint(),
});

export type Endpoint = FieldValue<typeof ENDPOINT>;
export type SessionSummary = FieldValue<typeof SESSION_SUMMARY>;
export type DirectoryEntry = FieldValue<typeof DIRECTORY_ENTRY>;
export type LogEvent = FieldValue<typeof LOG_EVENT>;

/** A session ticket as the server signed it: body bytes and signature (common/crypto/ticket.ts). */
export const TICKET_FIELD = field.object({
  body: field.bytes({ maxBytes: 1024 }),
  sig: field.bytes({ maxBytes: 64, exactBytes: 64 }),
});

/** A revocation as the server signed it: body bytes and signature (common/crypto/revocation.ts). */
export const REVOCATION_FIELD = field.object({
  body: field.bytes({ maxBytes: 512 }),
  sig: field.bytes({ maxBytes: 64, exactBytes: 64 }),
});

export const LOG_EVENT = field.object({
  id: EVENT_ID,
  /** ms since the epoch (the peer's clock corrected to server time); at most JavaScript's last Date. */
  at: field.uint({ max: 8_640_000_000_000_000 }),
  event: field.string({ maxBytes: 32, minBytes: 1 }),
  /** Metadata only: never message texts, file contents or passwords. */
  detail: field.string({ maxBytes: 256 }),
});

/**
 * Every message that travels inside a secure channel, as one discriminated union on `type`.
 * A message enters the program only through `decodeMessage`, which validates it against its shape.
 * Adding a type: add its shape here, document it in docs/protocol.md, add a negative test.
 */
const MESSAGE_SHAPES = {
  /** Liveness and round-trip probe; the receiver answers with a `pong` carrying the same id and data. */
  ping: {
    id: field.uint(),
    /** Small on purpose: every ping is answered, so a large one would let a peer make us send bulk. */
    data: field.optional(field.bytes({ maxBytes: MAX_PING_DATA_BYTES })),
  },
  pong: {
    id: field.uint(),
    data: field.optional(field.bytes({ maxBytes: MAX_PING_DATA_BYTES })),
  },
  /** A fatal problem the sender reports before closing; `code` is a SALA_E_… name. */
  error: {
    code: field.string({ maxBytes: 64, minBytes: 1 }),
    message: field.string({ maxBytes: 1024 }),
    /** SALA_E_SESSION_LIMIT: the live sessions that hold the slots. */
    sessions: field.optional(field.array(SESSION_SUMMARY, { maxItems: 16 })),
    /** SALA_E_RATE_LIMIT / SALA_E_BUSY: when to try again. */
    retryAfterMs: field.optional(field.uint()),
  },

  // ── rendezvous: server → peer ──
  /** The answer to a successful login or resume (handshake msg 3 carried the request). */
  welcome: {
    user: USER,
    sessionId: SESSION_ID,
    ticket: TICKET_FIELD,
    /** Server clock at sending: peers judge ticket times by server time (SECURITY.md H4). */
    serverTimeMs: field.uint(),
    /** How long a dropped connection keeps its session (the client resumes within it). */
    graceMs: field.uint(),
    /** When to ask for a fresh ticket, in ms from now. */
    renewInMs: field.uint(),
    directory: field.array(DIRECTORY_ENTRY, { maxItems: MAX_DIRECTORY_ENTRIES }),
    revoked: field.array(REVOCATION_FIELD, { maxItems: MAX_REVOCATIONS }),
    isResumed: field.boolean(),
  },
  /** The answer to a successful registration; the server then closes the connection. */
  registered: { user: USER },
  /** Who came online, changed address or went offline: pushed to every session as it happens. */
  'directory.update': {
    online: field.array(DIRECTORY_ENTRY, { maxItems: MAX_DIRECTORY_ENTRIES }),
    offline: field.array(field.object({ user: USER, sessionId: SESSION_ID }), { maxItems: MAX_OFFLINE_ENTRIES }),
  },
  /** A renewed ticket for this session. */
  ticket: { ticket: TICKET_FIELD, serverTimeMs: field.uint(), renewInMs: field.uint() },
  /** A signed revocation: peers drop links of that session and pass it on. */
  revoked: { revocation: REVOCATION_FIELD },
  /**
   * A group this session is in, after every change of membership: the multicast address and port,
   * the current key and its epoch, and who may send (their sender index and signing key).
   */
  'group.state': {
    group: USER,
    groupId: field.bytes({ maxBytes: 16, exactBytes: 16 }),
    address: field.string({ maxBytes: 15, minBytes: 7 }),
    port: field.uint({ max: 65_535 }),
    epoch: field.uint({ max: 0xffff_ffff }),
    key: KEY,
    members: field.array(
      field.object({ senderIdx: field.uint({ max: 0xffff }), user: USER, sessionId: SESSION_ID, sigPk: KEY }),
      { maxItems: MAX_GROUP_MEMBERS },
    ),
  },
  /**
   * The session is not in the group: the answer to group.leave, or — with `code` and `message` —
   * to a group.join the server refused (SALA_E_INVALID_NAME, SALA_E_RATE_LIMIT, SALA_E_BUSY).
   */
  'group.left': {
    group: field.string({ maxBytes: 64, minBytes: 1 }),
    code: field.optional(field.string({ maxBytes: 64, minBytes: 1 })),
    message: field.optional(field.string({ maxBytes: 1024 })),
  },
  /** Which activity events the server has stored (or had already): the peer may forget them. */
  'log.ack': { ids: field.array(EVENT_ID, { maxItems: MAX_LOG_BATCH }) },

  // ── peer ↔ peer (direct links) ──
  /** A 1:1 chat message; `id` is the same on both ends and makes redelivery harmless. */
  chat: {
    id: EVENT_ID,
    text: field.string({ maxBytes: MAX_CHAT_TEXT_BYTES }),
    /** ms since the epoch, the sender's server time. */
    at: field.uint({ max: 8_640_000_000_000_000 }),
  },
  /** The receiver has stored the message with this id (sent again for a duplicate). */
  'chat.ack': { id: EVENT_ID },
  // ── peer ↔ peer: file transfer (docs/protocol.md 4.5) ──
  /** The sender offers a file; `transferId` stays the same across resumptions. */
  'file.offer': {
    transferId: EVENT_ID,
    name: field.string({ maxBytes: MAX_FILE_NAME_BYTES, minBytes: 1 }),
    size: field.uint(),
    sha256: field.bytes({ maxBytes: 32, exactBytes: 32 }),
  },
  /** The receiver accepts, from `offset` (the bytes it already holds from an interrupted attempt). */
  'file.accept': { transferId: EVENT_ID, offset: field.uint() },
  'file.decline': { transferId: EVENT_ID },
  /** The receiver may be sent `bytes` more of the file (flow control: it grants as it writes to disk). */
  'file.credit': { transferId: EVENT_ID, bytes: field.uint({ max: MAX_FILE_CREDIT_BYTES }) },
  'file.chunk': { transferId: EVENT_ID, offset: field.uint(), data: field.bytes({ maxBytes: MAX_FILE_CHUNK_BYTES }) },
  /** The sender has sent every byte. */
  'file.done': { transferId: EVENT_ID },
  /** The receiver has checked the whole-file hash and stored the file under its final name. */
  'file.complete': { transferId: EVENT_ID },
  /** Either side ends the transfer (cancelled, failed, timed out); `code` is a SALA_E_… name. */
  'file.cancel': { transferId: EVENT_ID, code: field.string({ maxBytes: 64, minBytes: 1 }), message: field.string({ maxBytes: 1024 }) },
  /**
   * A sealed group datagram carried over a direct link instead of multicast (a network that drops
   * multicast): the same bytes, checked the same way by the receiver.
   */
  'group.datagram': { data: field.bytes({ maxBytes: 1200 }) },
  /**
   * The sender's renewed session ticket (every 30 minutes): the link outlives the ticket shown in
   * its handshake only if a newer one for the same session and key arrives before that one expires.
   */
  'link.ticket': { ticket: TICKET_FIELD },

  // ── rendezvous: peer → server ──
  /** The addresses this peer accepts links on (it listens on all interfaces by default). */
  announce: { addresses: field.array(ENDPOINT, { maxItems: MAX_ENDPOINTS }) },
  'ticket.renew': {},
  /** Joins a group (created on first join); answered by group.state. Group names follow user-name rules. */
  'group.join': { group: field.string({ maxBytes: 64, minBytes: 1 }) },
  'group.leave': { group: field.string({ maxBytes: 64, minBytes: 1 }) },
  'log.batch': { events: field.array(LOG_EVENT, { maxItems: MAX_LOG_BATCH }) },
  /** Ends the session now and frees its slot (the server closes the connection). */
  logout: {},
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
