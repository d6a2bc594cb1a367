/**
 * Every error Sala throws or emits is a SalaError with a stable `code`.
 *
 * Codes are public API: scripts branch on them and docs/errors.md lists them (a test checks that the
 * two agree both ways). Never rename or reuse a code; retire it by leaving it here, marked retired.
 */

export const ERROR_CODES = Object.freeze({
  // configuration and local state
  SALA_E_CONFIG_INVALID: 'An option or setting has a value Sala cannot use; the message names it.',
  SALA_E_KEY_UNREADABLE: 'A key file exists but cannot be read or parsed; Sala refuses to replace it.',
  SALA_E_DATA_DIR: 'The data directory cannot be created or written.',

  // framing and message validation
  SALA_E_FRAME_TOO_LARGE: 'A frame declared a length above the limit; the connection is closed.',
  SALA_E_FRAME_TRUNCATED: 'The connection ended in the middle of a frame.',
  SALA_E_PROTOCOL_MALFORMED: 'A message could not be decoded as a MessagePack map.',
  SALA_E_PROTOCOL_UNKNOWN_TYPE: 'A message had a `type` this version does not know.',
  SALA_E_PROTOCOL_INVALID_FIELD: 'A message had a missing, unknown, wrongly typed or oversized field.',

  // handshake and secure channel
  SALA_E_HANDSHAKE_FAILED: 'The encrypted handshake failed (bad or tampered data, wrong protocol).',
  SALA_E_HANDSHAKE_TIMEOUT: 'The other side did not finish the handshake in time.',
  SALA_E_REMOTE_KEY_MISMATCH: 'The other side proved a key other than the one expected.',
  SALA_E_CHANNEL_DECRYPT_FAILED: 'A frame failed authentication (tampered, replayed, reordered or dropped).',
  SALA_E_CHANNEL_TRUNCATED: 'The connection ended without the encrypted close; data may be missing.',
  SALA_E_CHANNEL_CLOSED: 'The channel was already closed when an operation was attempted.',
  SALA_E_CONNECTION_FAILED: 'A TCP connection could not be opened or was reset.',
  SALA_E_ABORTED: 'The operation was cancelled by its caller.',

  // accounts, login and sessions
  SALA_E_INVALID_NAME: 'A user name is not 2–32 characters of a–z, 0–9, "_" or "-" (after NFKC and lower-casing).',
  SALA_E_AUTH_FAILED: 'Unknown user or wrong password (one answer for both, so names cannot be probed).',
  SALA_E_ACCOUNT_DISABLED: 'The account is disabled by the administrator (told only after a correct password).',
  SALA_E_SESSION_LIMIT: 'The account already has its maximum of live sessions; the error lists them.',
  SALA_E_SESSION_UNKNOWN: 'A session to resume does not exist, has expired, or belongs to another device.',
  SALA_E_RATE_LIMIT: 'Too many attempts; the error says how long to wait (retryAfterMs).',
  SALA_E_BUSY: 'The server is momentarily overloaded; try again shortly.',
  SALA_E_USER_EXISTS: 'An account with this name already exists.',
  SALA_E_USER_UNKNOWN: 'An administrator named an account that does not exist (never told to peers: they get SALA_E_AUTH_FAILED).',
  SALA_E_PASSWORD_REJECTED: 'A new password is too short (under 8 characters) or too long (over 1,024 bytes).',
  SALA_E_REGISTRATION_CLOSED: 'This server does not allow self-registration; ask the administrator.',
  SALA_E_KICKED: 'An administrator ended this session.',
  SALA_E_SERVER_KEY_MISMATCH: 'The server proved a different key from the one pinned for it: possibly an impostor.',
  SALA_E_SERVER_KEY_UNVERIFIED: 'The server key was not confirmed (first login needs --server-key or the prompt).',
  SALA_E_SERVER_UNREACHABLE: 'No rendezvous server could be reached or found.',
  SALA_E_SERVER_RUNNING: 'Another server already uses this data directory.',
  SALA_E_TICKET_INVALID: 'A session ticket is forged, expired, revoked, or not for this key or user.',

  // chat
  SALA_E_MESSAGE_TOO_LARGE: 'A message is over the size limit (64 KiB for 1:1, 8 KiB for groups, in UTF-8 bytes).',
  SALA_E_UNKNOWN_USER: 'A message was addressed to a name that is not a user (or to oneself).',

  // file transfer
  SALA_E_TRANSFER_CANCELLED: 'A file transfer was cancelled by one side; the partial file is removed.',
  SALA_E_TRANSFER_DECLINED: 'The receiver declined the offered file.',
  SALA_E_TRANSFER_TIMEOUT: 'An offer was not answered in time, or a transfer made no progress for too long.',
  SALA_E_TRANSFER_CORRUPT: 'The received file does not match the size or hash the sender announced.',
  SALA_E_TRANSFER_UNKNOWN: 'No transfer with that id is waiting for this command.',
  SALA_E_FILE_CHANGED: 'The file changed on the sender while it was being sent; send it again.',
  SALA_E_FILE_UNREADABLE: 'The file to send cannot be read (missing, a folder, or no permission).',
  SALA_E_FILE_TOO_LARGE: 'The offered file is larger than this peer accepts (--max-file-size).',
  SALA_E_DISK_FULL: 'Not enough free space in the downloads folder for the file.',
  SALA_E_DOWNLOADS_DIR: 'The downloads folder cannot be created or written.',

  // peer program
  SALA_E_COMMAND_INVALID: 'A JSON-lines or slash command is malformed, unknown, or misses a field; the message says which.',
  SALA_E_DISCOVERY_FAILED: 'mDNS did not work (port in use, no multicast on the interface); peers are still found through the server directory.',
  SALA_E_PEER_RUNNING: 'Another sala program already uses this data directory for this user.',

  // admin API
  SALA_E_ADMIN_UNREACHABLE: 'The admin command could not reach a running server for this data directory.',
  SALA_E_ADMIN_REFUSED: 'The running server refused the admin request; the message says why.',

  // groups
  SALA_E_GROUP_DATAGRAM_INVALID: 'A group datagram was malformed, truncated, over 1200 bytes, or of an unknown version, type or group; it was dropped.',
  SALA_E_GROUP_NOT_MEMBER: 'Not a member: a group datagram from a sender index not in its key epoch (dropped), or a send or leave for a group this peer is not in.',
  SALA_E_GROUP_MESSAGES_LOST: 'Group messages from a sender were lost and could not be repaired in time; later ones are shown anyway.',
  SALA_E_GROUP_MULTICAST_UNAVAILABLE: 'Multicast does not work on this network for the group; its messages go over direct links instead.',
  SALA_E_GROUP_KEY_UNKNOWN: 'A group datagram used a key epoch that is neither the current one nor the previous one during a rotation; it was dropped.',
  SALA_E_GROUP_REPLAY: 'A group datagram was already received, is older than the replay window, or carries a time over 30 s from server time; it was dropped.',
  SALA_E_GROUP_RATE_LIMIT: 'A group member sent datagrams faster than the per-sender limit; the excess was dropped.',
  SALA_E_GROUP_AUTH_FAILED: 'A group datagram failed decryption or its sender signature (tampered, forged, or sealed with another key); it was dropped.',
} as const);

export type SalaErrorCode = keyof typeof ERROR_CODES;

export function isSalaErrorCode(value: unknown): value is SalaErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * Machine-readable extras some errors carry (SALA_E_SESSION_LIMIT: sessions; SALA_E_RATE_LIMIT:
 * retryAfterMs; SALA_E_COMMAND_INVALID: the command's `ref`, so the JSON-lines `error` event can echo it).
 */
export interface SalaErrorDetails {
  sessions?: readonly { sessionId: string; address: string; since: string }[];
  retryAfterMs?: number;
  ref?: string;
}

export class SalaError extends Error {
  readonly code: SalaErrorCode;
  readonly details: Readonly<SalaErrorDetails>;

  constructor(code: SalaErrorCode, message: string, options?: { cause?: unknown; details?: SalaErrorDetails }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...options?.details });
  }

  override get name(): string {
    return 'SalaError';
  }
}

export class FrameTooLargeError extends SalaError {
  constructor(declaredBytes: number, maxFrameBytes: number) {
    super(
      'SALA_E_FRAME_TOO_LARGE',
      `The other side announced a ${declaredBytes}-byte frame; the limit is ${maxFrameBytes} bytes. ` +
        'The connection was closed.',
    );
  }
}

export class ConfigInvalidError extends SalaError {
  constructor(option: string, problem: string) {
    super('SALA_E_CONFIG_INVALID', `Option "${option}" ${problem}.`);
  }
}

/** Wraps any thrown value so callers can branch on `code` without guessing. */
export function toSalaError(err: unknown, fallback: SalaErrorCode, message: string): SalaError {
  if (err instanceof SalaError) return err;
  return new SalaError(fallback, message, { cause: err });
}
