import { isPlainObject, SalaError } from '../../common/index.js';

/**
 * The commands of `sala chat`, in the two forms of CONTRACT.md "sala (the peer)": one JSON object
 * per line (`--json`) and the interactive slash commands. Both parse into the same union, so the CLI
 * has one dispatcher. Input is untrusted: everything enters as a string and leaves as a
 * ChatCommand or a SalaError with code SALA_E_COMMAND_INVALID.
 */
export type ChatCommand =
  | { cmd: 'peers'; ref?: string }
  | { cmd: 'send'; to: string; text: string; ref?: string }
  | { cmd: 'sendFile'; to: string; path: string; name?: string; ref?: string }
  | { cmd: 'acceptFile'; transferId: string; ref?: string }
  | { cmd: 'declineFile'; transferId: string; ref?: string }
  | { cmd: 'cancelFile'; transferId: string; ref?: string }
  | { cmd: 'join'; group: string; ref?: string }
  | { cmd: 'leave'; group: string; ref?: string }
  | { cmd: 'groupSend'; group: string; text: string; ref?: string }
  | { cmd: 'history'; with: string; ref?: string }
  | { cmd: 'quit'; ref?: string };

export type ChatCommandName = ChatCommand['cmd'];

/** What a slash line can mean besides a ChatCommand: `/help` is answered by the CLI itself. */
export type SlashCommand = ChatCommand | { cmd: 'help' };

/**
 * A JSON command line is refused above this many UTF-8 bytes, before JSON.parse sees it. The largest
 * legitimate command is a 64 KiB message; the rest is room for JSON escaping (`\uXXXX` spends 6
 * bytes where UTF-8 spends 1 to 3).
 */
export const MAX_COMMAND_LINE_BYTES = 256 * 1024;

/** A `ref` is echoed back in events; longer ones are refused rather than echoed. */
export const MAX_COMMAND_REF_CHARS = 256;

const COMMAND_NAMES: readonly ChatCommandName[] = Object.freeze([
  'peers',
  'send',
  'sendFile',
  'acceptFile',
  'declineFile',
  'cancelFile',
  'join',
  'leave',
  'groupSend',
  'history',
  'quit',
]);

function isCommandName(value: string): value is ChatCommandName {
  return (COMMAND_NAMES as readonly string[]).includes(value);
}

function commandInvalid(message: string, ref?: string, cause?: unknown): SalaError {
  return new SalaError('SALA_E_COMMAND_INVALID', message, {
    details: ref !== undefined ? { ref } : {},
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Own properties only: a polluted Object.prototype must not supply a missing field. */
function own(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}

/**
 * Parses one JSON-lines command. Unknown extra fields are ignored (a newer script may send more),
 * but every field the command uses must have the right type. When the line is a JSON object with
 * a usable `ref`, any error about the rest of it carries that ref in `details.ref`.
 */
export function parseJsonCommand(line: string): ChatCommand {
  // UTF-8 never takes fewer bytes than UTF-16 code units, so the cheap check is exact when it fires.
  if (line.length > MAX_COMMAND_LINE_BYTES || Buffer.byteLength(line, 'utf8') > MAX_COMMAND_LINE_BYTES) {
    throw commandInvalid(`A command line may be at most ${MAX_COMMAND_LINE_BYTES} bytes; this one is longer.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw commandInvalid('A command must be one line of valid JSON, like {"cmd":"peers"}.', undefined, err);
  }
  if (!isPlainObject(parsed)) {
    throw commandInvalid(`A command must be a JSON object like {"cmd":"peers"}; got ${describeType(parsed)}.`);
  }

  const rawRef = own(parsed, 'ref');
  let ref: string | undefined;
  if (rawRef !== undefined) {
    if (typeof rawRef !== 'string') throw commandInvalid(`Field "ref" must be a string; got ${describeType(rawRef)}.`);
    if (rawRef.length > MAX_COMMAND_REF_CHARS) {
      throw commandInvalid(`Field "ref" may be at most ${MAX_COMMAND_REF_CHARS} characters; it has ${rawRef.length}.`);
    }
    ref = rawRef;
  }

  const cmd = own(parsed, 'cmd');
  if (typeof cmd !== 'string') {
    throw commandInvalid(
      cmd === undefined ? 'A command needs "cmd" (a string), like {"cmd":"peers"}.' : `Field "cmd" must be a string; got ${describeType(cmd)}.`,
      ref,
    );
  }
  if (!isCommandName(cmd)) {
    throw commandInvalid(`Unknown command "${cmd.slice(0, 64)}"; known commands: ${COMMAND_NAMES.join(', ')}.`, ref);
  }

  const fields = parsed;
  const need = (key: string): string => {
    const value = own(fields, key);
    if (typeof value === 'string') return value;
    const got = value === undefined ? '' : `; got ${describeType(value)}`;
    throw commandInvalid(`Command "${cmd}" needs "${key}" (a string)${got}.`, ref);
  };
  const optional = (key: string): string | undefined => {
    const value = own(fields, key);
    if (value === undefined || typeof value === 'string') return value;
    throw commandInvalid(`Command "${cmd}": field "${key}" must be a string when given; got ${describeType(value)}.`, ref);
  };
  const withRef = <C extends ChatCommand>(command: C): C => (ref === undefined ? command : { ...command, ref });

  switch (cmd) {
    case 'peers':
      return withRef({ cmd });
    case 'send':
      return withRef({ cmd, to: need('to'), text: need('text') });
    case 'sendFile': {
      const to = need('to');
      const path = need('path');
      const name = optional('name');
      return withRef(name === undefined ? { cmd, to, path } : { cmd, to, path, name });
    }
    case 'acceptFile':
    case 'declineFile':
    case 'cancelFile':
      return withRef({ cmd, transferId: need('transferId') });
    case 'join':
    case 'leave':
      return withRef({ cmd, group: need('group') });
    case 'groupSend':
      return withRef({ cmd, group: need('group'), text: need('text') });
    case 'history':
      return withRef({ cmd, with: need('with') });
    case 'quit':
      return withRef({ cmd });
    default:
      return assertNever(cmd);
  }
}

function assertNever(value: never): never {
  throw new SalaError('SALA_E_COMMAND_INVALID', `Unhandled command ${String(value)}.`);
}

// ---------------------------------------------------------------------------------------------
// Slash commands (interactive mode)

type SlashArgs = 'none' | 'one' | 'text' | 'path';

interface SlashSpec {
  readonly name: string;
  readonly usage: string;
  readonly description: string;
  readonly args: SlashArgs;
}

/** One table drives parsing, usage errors and HELP_TEXT, so they cannot disagree. */
const SLASH_COMMANDS: readonly SlashSpec[] = Object.freeze([
  { name: 'peers', usage: '/peers', description: 'list the other users and who is online', args: 'none' },
  { name: 'msg', usage: '/msg USER TEXT', description: 'send TEXT to USER', args: 'text' },
  { name: 'send', usage: '/send USER PATH', description: 'offer a file to USER (quote a PATH with spaces: "my file.pdf")', args: 'path' },
  { name: 'accept', usage: '/accept ID', description: 'accept the offered file ID', args: 'one' },
  { name: 'decline', usage: '/decline ID', description: 'decline the offered file ID', args: 'one' },
  { name: 'cancel', usage: '/cancel ID', description: 'stop the transfer ID (sending or receiving)', args: 'one' },
  { name: 'join', usage: '/join GROUP', description: 'join GROUP', args: 'one' },
  { name: 'leave', usage: '/leave GROUP', description: 'leave GROUP', args: 'one' },
  { name: 'g', usage: '/g GROUP TEXT', description: 'send TEXT to GROUP', args: 'text' },
  { name: 'history', usage: '/history USER', description: 'show the conversation with USER', args: 'one' },
  { name: 'help', usage: '/help', description: 'show this list', args: 'none' },
  { name: 'quit', usage: '/quit', description: 'log out and exit', args: 'none' },
] satisfies SlashSpec[]);

const USAGE_WIDTH = Math.max(...SLASH_COMMANDS.map((spec) => spec.usage.length)) + 2;

/** The answer to /help: one line per command, usage then description. */
export const HELP_TEXT: string = [
  'Commands:',
  ...SLASH_COMMANDS.map((spec) => `  ${spec.usage.padEnd(USAGE_WIDTH)}${spec.description}`),
].join('\n');

export interface SlashParseOptions {
  /**
   * The user a plain line (one not starting with "/") is sent to: the "current conversation".
   * Without it a plain line is an error that explains /msg. A line starting with "//" is then sent
   * as text with one "/" removed, so a message can start with a slash.
   */
  defaultTo?: string;
  /** Instead of defaultTo: the group a plain line goes to (after `/g GROUP …`). */
  defaultGroup?: string;
}

const WHITESPACE = /\s/u;

/** Splits off the first whitespace-delimited word; `rest` starts right after it (separator kept). */
function splitWord(text: string): { word: string; rest: string } {
  const start = text.search(/\S/u);
  if (start === -1) return { word: '', rest: '' };
  const after = text.slice(start);
  const end = after.search(/\s/u);
  return end === -1 ? { word: after, rest: '' } : { word: after.slice(0, end), rest: after.slice(end) };
}

function usageError(spec: SlashSpec, problem: string): SalaError {
  return commandInvalid(`${problem} Usage: ${spec.usage}`);
}

/** A PATH is the rest of the line, trimmed; "..." quotes are removed (no escapes: Windows paths). */
function parsePath(spec: SlashSpec, raw: string): string {
  const trimmed = raw.trim();
  if (!trimmed.startsWith('"')) return trimmed;
  if (trimmed.length < 2 || !trimmed.endsWith('"')) throw usageError(spec, 'The PATH has an opening " but no closing ".');
  const inner = trimmed.slice(1, -1);
  if (inner.trim() === '') throw usageError(spec, 'The quoted PATH is empty.');
  if (inner.includes('"')) throw usageError(spec, 'Quote the whole PATH once, like "my file.pdf".');
  return inner;
}

/**
 * Parses one interactive line. Returns undefined for a blank line. TEXT keeps its spacing: only the
 * single space (or tab) after USER or GROUP is removed.
 */
export function parseSlashCommand(line: string, options: SlashParseOptions = {}): SlashCommand | undefined {
  if (line.trim() === '') return undefined;
  const body = line.trimStart();
  if (!body.startsWith('/') || body.startsWith('//')) {
    const text = body.startsWith('//') ? body.slice(1) : line;
    if (options.defaultTo !== undefined) return { cmd: 'send', to: options.defaultTo, text };
    if (options.defaultGroup !== undefined) return { cmd: 'groupSend', group: options.defaultGroup, text };
    throw commandInvalid('To send a message type /msg USER TEXT, or /g GROUP TEXT for a group (type /help for all commands).');
  }

  const { word, rest } = splitWord(body.slice(1));
  const name = word.toLowerCase();
  const spec = SLASH_COMMANDS.find((candidate) => candidate.name === name);
  if (spec === undefined) throw commandInvalid(`Unknown command /${word.slice(0, 32)}; type /help`);

  let target = '';
  let remainder = '';
  switch (spec.args) {
    case 'none':
      if (rest.trim() !== '') throw usageError(spec, `/${spec.name} takes no arguments.`);
      break;
    case 'one': {
      ({ word: target, rest: remainder } = splitWord(rest));
      if (target === '') throw usageError(spec, `/${spec.name} needs an argument.`);
      if (remainder.trim() !== '') throw usageError(spec, `/${spec.name} takes one argument.`);
      break;
    }
    case 'text':
    case 'path': {
      ({ word: target, rest: remainder } = splitWord(rest));
      // `remainder` is empty or starts with the separator, which is dropped; nothing else is.
      if (remainder !== '' && WHITESPACE.test(remainder.charAt(0))) remainder = remainder.slice(1);
      const [targetLabel = '', whatLabel = ''] = spec.usage.split(' ').slice(1);
      if (target === '') throw usageError(spec, `/${spec.name} needs ${targetLabel} and ${whatLabel}.`);
      if (remainder.trim() === '') throw usageError(spec, `/${spec.name} needs ${whatLabel} after ${targetLabel}.`);
      break;
    }
    default:
      return assertNever(spec.args);
  }

  switch (spec.name) {
    case 'peers':
      return { cmd: 'peers' };
    case 'msg':
      return { cmd: 'send', to: target, text: remainder };
    case 'send':
      return { cmd: 'sendFile', to: target, path: parsePath(spec, remainder) };
    case 'accept':
      return { cmd: 'acceptFile', transferId: target };
    case 'decline':
      return { cmd: 'declineFile', transferId: target };
    case 'cancel':
      return { cmd: 'cancelFile', transferId: target };
    case 'join':
      return { cmd: 'join', group: target };
    case 'leave':
      return { cmd: 'leave', group: target };
    case 'g':
      return { cmd: 'groupSend', group: target, text: remainder };
    case 'history':
      return { cmd: 'history', with: target };
    case 'help':
      return { cmd: 'help' };
    case 'quit':
      return { cmd: 'quit' };
    default:
      throw commandInvalid(`Unknown command /${spec.name}; type /help`);
  }
}
