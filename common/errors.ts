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
} as const);

export type SalaErrorCode = keyof typeof ERROR_CODES;

export function isSalaErrorCode(value: unknown): value is SalaErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export class SalaError extends Error {
  readonly code: SalaErrorCode;

  constructor(code: SalaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
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
