import { describe, expect, it } from 'vitest';
import {
  HELP_TEXT,
  MAX_COMMAND_LINE_BYTES,
  MAX_COMMAND_REF_CHARS,
  parseJsonCommand,
  parseSlashCommand,
  type ChatCommand,
} from '../../../../peer/cli/chat-commands.js';
import { catchSalaError } from '../../../helpers/errors.js';

function jsonError(line: string) {
  return catchSalaError(() => parseJsonCommand(line), 'SALA_E_COMMAND_INVALID');
}

/** Expects `line` to be refused with `fragment` in the message and `ref` (or none) in the details. */
function expectJsonRefusal(line: string, fragment: string, ref: string | undefined): void {
  const err = jsonError(line);
  expect(err.message).toContain(fragment);
  expect(err.details.ref).toBe(ref);
}

function slashError(line: string, options?: { defaultTo?: string }) {
  return catchSalaError(() => parseSlashCommand(line, options), 'SALA_E_COMMAND_INVALID');
}

describe('parseJsonCommand', () => {
  const valid: [string, ChatCommand][] = [
    ['{"cmd":"peers"}', { cmd: 'peers' }],
    ['{"cmd":"send","to":"bob","text":"hi"}', { cmd: 'send', to: 'bob', text: 'hi' }],
    ['{"cmd":"sendFile","to":"bob","path":"/tmp/a b.pdf"}', { cmd: 'sendFile', to: 'bob', path: '/tmp/a b.pdf' }],
    [
      '{"cmd":"sendFile","to":"bob","path":"/tmp/a.pdf","name":"report.pdf"}',
      { cmd: 'sendFile', to: 'bob', path: '/tmp/a.pdf', name: 'report.pdf' },
    ],
    ['{"cmd":"acceptFile","transferId":"t1"}', { cmd: 'acceptFile', transferId: 't1' }],
    ['{"cmd":"declineFile","transferId":"t1"}', { cmd: 'declineFile', transferId: 't1' }],
    ['{"cmd":"cancelFile","transferId":"t1"}', { cmd: 'cancelFile', transferId: 't1' }],
    ['{"cmd":"join","group":"math"}', { cmd: 'join', group: 'math' }],
    ['{"cmd":"leave","group":"math"}', { cmd: 'leave', group: 'math' }],
    ['{"cmd":"groupSend","group":"math","text":"hello all"}', { cmd: 'groupSend', group: 'math', text: 'hello all' }],
    ['{"cmd":"history","with":"bob"}', { cmd: 'history', with: 'bob' }],
    ['{"cmd":"quit"}', { cmd: 'quit' }],
  ];

  it.each(valid)('parses %s', (line, expected) => {
    expect(parseJsonCommand(line)).toEqual(expected);
  });

  it('keeps a string ref on every command', () => {
    for (const [line, expected] of valid) {
      const withRef = `${line.slice(0, -1)},"ref":"r-1"}`;
      expect(parseJsonCommand(withRef)).toEqual({ ...expected, ref: 'r-1' });
    }
  });

  it('ignores unknown extra fields', () => {
    expect(parseJsonCommand('{"cmd":"send","to":"bob","text":"hi","priority":9,"x":{"y":[1]}}')).toEqual({
      cmd: 'send',
      to: 'bob',
      text: 'hi',
    });
  });

  it('keeps the text exactly, spacing, newlines and lone surrogates included', () => {
    const cmd = parseJsonCommand('{"cmd":"send","to":"bob","text":"  two  spaces\\n\\ud800 "}');
    expect(cmd).toEqual({ cmd: 'send', to: 'bob', text: '  two  spaces\n\ud800 ' });
  });

  it('reads only own fields, not ones inherited through __proto__', () => {
    const err = jsonError('{"cmd":"send","__proto__":{"to":"bob"},"text":"hi"}');
    expect(err.message).toContain('"to"');
  });

  it('refuses a line that is not JSON', () => {
    expectJsonRefusal('{"cmd":"peers"', 'JSON', undefined);
  });

  it.each(['[]', '"peers"', '42', 'null', 'true'])('refuses %s, which is not an object', (line) => {
    expect(jsonError(line).message).toMatch(/JSON object/);
  });

  it('refuses a command without cmd and carries the ref', () => {
    expectJsonRefusal('{"ref":"a"}', '"cmd"', 'a');
  });

  it('refuses a cmd that is not a string and carries the ref', () => {
    expectJsonRefusal('{"cmd":7,"ref":"a"}', '"cmd" must be a string', 'a');
  });

  it('refuses an unknown command, naming it, and carries the ref', () => {
    expectJsonRefusal('{"cmd":"explode","ref":"r9"}', 'Unknown command "explode"', 'r9');
  });

  it('is case-sensitive about command names', () => {
    expect(jsonError('{"cmd":"Peers"}').message).toContain('Unknown command');
  });

  const missing: [string, string][] = [
    ['{"cmd":"send","text":"hi","ref":"x"}', 'Command "send" needs "to" (a string).'],
    ['{"cmd":"send","to":"bob","ref":"x"}', 'Command "send" needs "text" (a string).'],
    ['{"cmd":"sendFile","to":"bob","ref":"x"}', 'Command "sendFile" needs "path" (a string).'],
    ['{"cmd":"acceptFile","ref":"x"}', 'Command "acceptFile" needs "transferId" (a string).'],
    ['{"cmd":"declineFile","ref":"x"}', 'Command "declineFile" needs "transferId" (a string).'],
    ['{"cmd":"cancelFile","ref":"x"}', 'Command "cancelFile" needs "transferId" (a string).'],
    ['{"cmd":"join","ref":"x"}', 'Command "join" needs "group" (a string).'],
    ['{"cmd":"leave","ref":"x"}', 'Command "leave" needs "group" (a string).'],
    ['{"cmd":"groupSend","group":"math","ref":"x"}', 'Command "groupSend" needs "text" (a string).'],
    ['{"cmd":"history","ref":"x"}', 'Command "history" needs "with" (a string).'],
  ];

  it.each(missing)('refuses %s with a message naming the missing field', (line, message) => {
    const err = jsonError(line);
    expect(err.message).toBe(message);
    expect(err.details.ref).toBe('x');
  });

  it.each([
    ['{"cmd":"send","to":5,"text":"hi","ref":"x"}', 'a number'],
    ['{"cmd":"send","to":"bob","text":null,"ref":"x"}', 'null'],
    ['{"cmd":"join","group":["math"],"ref":"x"}', 'an array'],
    ['{"cmd":"history","with":{"user":"bob"},"ref":"x"}', 'an object'],
    ['{"cmd":"acceptFile","transferId":true,"ref":"x"}', 'a boolean'],
  ])('refuses a wrongly typed field in %s and says what it got', (line, got) => {
    expectJsonRefusal(line, `got ${got}`, 'x');
  });

  it('refuses a sendFile name that is not a string', () => {
    expectJsonRefusal('{"cmd":"sendFile","to":"bob","path":"/a","name":3,"ref":"x"}', '"name" must be a string', 'x');
  });

  it('refuses a ref that is not a string, without echoing it', () => {
    expectJsonRefusal('{"cmd":"peers","ref":12}', '"ref" must be a string', undefined);
  });

  it('accepts a ref of exactly the maximum length', () => {
    const ref = 'r'.repeat(MAX_COMMAND_REF_CHARS);
    expect(parseJsonCommand(JSON.stringify({ cmd: 'peers', ref }))).toEqual({ cmd: 'peers', ref });
  });

  it('refuses a ref over the maximum length, without echoing it', () => {
    const line = JSON.stringify({ cmd: 'peers', ref: 'r'.repeat(MAX_COMMAND_REF_CHARS + 1) });
    expectJsonRefusal(line, String(MAX_COMMAND_REF_CHARS), undefined);
  });

  it('accepts a line of exactly the maximum size', () => {
    const prefix = '{"cmd":"send","to":"bob","text":"';
    const text = 'a'.repeat(MAX_COMMAND_LINE_BYTES - prefix.length - 2);
    const line = `${prefix}${text}"}`;
    expect(Buffer.byteLength(line)).toBe(MAX_COMMAND_LINE_BYTES);
    expect(parseJsonCommand(line)).toMatchObject({ cmd: 'send', text });
  });

  it('refuses a line over the maximum size before parsing it', () => {
    const line = JSON.stringify({ cmd: 'send', to: 'bob', text: 'a'.repeat(MAX_COMMAND_LINE_BYTES), ref: 'x' });
    expectJsonRefusal(line, String(MAX_COMMAND_LINE_BYTES), undefined);
  });

  it('counts the size in UTF-8 bytes, not characters', () => {
    // 'é' is one UTF-16 unit but two UTF-8 bytes: the line is short in characters, long in bytes.
    const line = JSON.stringify({ cmd: 'send', to: 'bob', text: 'é'.repeat(MAX_COMMAND_LINE_BYTES / 2 + 1) });
    expect(line.length).toBeLessThan(MAX_COMMAND_LINE_BYTES);
    jsonError(line);
  });
});

describe('parseSlashCommand', () => {
  const valid: [string, ReturnType<typeof parseSlashCommand>][] = [
    ['/peers', { cmd: 'peers' }],
    ['/msg bob hello there', { cmd: 'send', to: 'bob', text: 'hello there' }],
    ['/send bob /tmp/report.pdf', { cmd: 'sendFile', to: 'bob', path: '/tmp/report.pdf' }],
    ['/accept t1', { cmd: 'acceptFile', transferId: 't1' }],
    ['/decline t1', { cmd: 'declineFile', transferId: 't1' }],
    ['/cancel t1', { cmd: 'cancelFile', transferId: 't1' }],
    ['/join math', { cmd: 'join', group: 'math' }],
    ['/leave math', { cmd: 'leave', group: 'math' }],
    ['/g math hello all', { cmd: 'groupSend', group: 'math', text: 'hello all' }],
    ['/history bob', { cmd: 'history', with: 'bob' }],
    ['/help', { cmd: 'help' }],
    ['/quit', { cmd: 'quit' }],
  ];

  it.each(valid)('parses %s', (line, expected) => {
    expect(parseSlashCommand(line)).toEqual(expected);
  });

  it('returns undefined for an empty or blank line', () => {
    expect(parseSlashCommand('')).toBeUndefined();
    expect(parseSlashCommand('   \t ')).toBeUndefined();
  });

  it('removes only the one separator after USER and keeps the rest of the text exactly', () => {
    expect(parseSlashCommand('/msg bob   two  spaces  ')).toEqual({ cmd: 'send', to: 'bob', text: '  two  spaces  ' });
    expect(parseSlashCommand('/g math \tindented')).toEqual({ cmd: 'groupSend', group: 'math', text: '\tindented' });
  });

  it('accepts extra spaces between the command and USER, and a leading space before /', () => {
    expect(parseSlashCommand('  /msg    bob hi')).toEqual({ cmd: 'send', to: 'bob', text: 'hi' });
    expect(parseSlashCommand('/join   math  ')).toEqual({ cmd: 'join', group: 'math' });
  });

  it('accepts command names in any case', () => {
    expect(parseSlashCommand('/MSG bob hi')).toEqual({ cmd: 'send', to: 'bob', text: 'hi' });
  });

  it('takes the rest of the line as PATH, spaces included', () => {
    expect(parseSlashCommand('/send bob /tmp/my report.pdf ')).toEqual({
      cmd: 'sendFile',
      to: 'bob',
      path: '/tmp/my report.pdf',
    });
  });

  it('removes double quotes around PATH and keeps backslashes', () => {
    expect(parseSlashCommand('/send bob "C:\\Users\\ana\\my file.pdf"')).toEqual({
      cmd: 'sendFile',
      to: 'bob',
      path: 'C:\\Users\\ana\\my file.pdf',
    });
    expect(parseSlashCommand('/send bob   "  spaced .txt"  ')).toEqual({ cmd: 'sendFile', to: 'bob', path: '  spaced .txt' });
  });

  it.each([
    ['/send bob "unterminated.pdf', 'closing'],
    ['/send bob "a" "b"', 'once'],
    ['/send bob ""', 'empty'],
  ])('refuses the badly quoted PATH in %s', (line, problem) => {
    const err = slashError(line);
    expect(err.message).toContain(problem);
    expect(err.message).toContain('Usage: /send USER PATH');
  });

  it('refuses an unknown command and points to /help', () => {
    expect(slashError('/x').message).toBe('Unknown command /x; type /help');
  });

  it('refuses a bare slash as an unknown command', () => {
    expect(slashError('/').message).toContain('type /help');
  });

  it.each([
    ['/msg', 'Usage: /msg USER TEXT'],
    ['/msg bob', 'Usage: /msg USER TEXT'],
    ['/msg bob ', 'Usage: /msg USER TEXT'],
    ['/msg bob    ', 'Usage: /msg USER TEXT'],
    ['/send', 'Usage: /send USER PATH'],
    ['/send bob', 'Usage: /send USER PATH'],
    ['/accept', 'Usage: /accept ID'],
    ['/decline', 'Usage: /decline ID'],
    ['/cancel', 'Usage: /cancel ID'],
    ['/join', 'Usage: /join GROUP'],
    ['/leave', 'Usage: /leave GROUP'],
    ['/g', 'Usage: /g GROUP TEXT'],
    ['/g math', 'Usage: /g GROUP TEXT'],
    ['/history', 'Usage: /history USER'],
  ])('refuses %s, which misses an argument, with the usage', (line, usage) => {
    expect(slashError(line).message).toContain(usage);
  });

  it.each([
    ['/peers now', 'Usage: /peers'],
    ['/quit please', 'Usage: /quit'],
    ['/join math physics', 'Usage: /join GROUP'],
    ['/accept t1 t2', 'Usage: /accept ID'],
  ])('refuses %s, which has arguments too many, with the usage', (line, usage) => {
    expect(slashError(line).message).toContain(usage);
  });

  it('tells the user to use /msg for a line that is not a command', () => {
    expect(slashError('hello bob').message).toContain('/msg USER TEXT');
  });

  it('sends a plain line to defaultTo, exactly as typed', () => {
    expect(parseSlashCommand('  hello  ', { defaultTo: 'bob' })).toEqual({ cmd: 'send', to: 'bob', text: '  hello  ' });
  });

  it('still parses commands when defaultTo is set', () => {
    expect(parseSlashCommand('/join math', { defaultTo: 'bob' })).toEqual({ cmd: 'join', group: 'math' });
  });

  it('sends a line starting with // to defaultTo with one slash removed', () => {
    expect(parseSlashCommand('//shrug', { defaultTo: 'bob' })).toEqual({ cmd: 'send', to: 'bob', text: '/shrug' });
  });

  it('sends a plain line (and a // line) to defaultGroup after /g', () => {
    expect(parseSlashCommand('see you at 4', { defaultGroup: 'class-3b' })).toEqual({ cmd: 'groupSend', group: 'class-3b', text: 'see you at 4' });
    expect(parseSlashCommand('//me', { defaultGroup: 'class-3b' })).toEqual({ cmd: 'groupSend', group: 'class-3b', text: '/me' });
    expect(parseSlashCommand('/leave class-3b', { defaultGroup: 'class-3b' })).toEqual({ cmd: 'leave', group: 'class-3b' });
  });

  it('names /g as well as /msg when a plain line has nowhere to go', () => {
    expect(slashError('hello').message).toContain('/g GROUP TEXT');
  });

  it('refuses a // line without defaultTo', () => {
    expect(slashError('//shrug').message).toContain('/msg USER TEXT');
  });

  it('carries no ref in slash errors', () => {
    expect(slashError('/x').details).toEqual({});
  });
});

describe('HELP_TEXT', () => {
  it('lists every slash command on its own line with a description', () => {
    const commands = ['/peers', '/msg USER TEXT', '/send USER PATH', '/accept ID', '/decline ID', '/cancel ID', '/join GROUP', '/leave GROUP', '/g GROUP TEXT', '/history USER', '/help', '/quit'];
    const lines = HELP_TEXT.split('\n');
    for (const usage of commands) {
      const line = lines.find((candidate) => candidate.trimStart().startsWith(`${usage} `));
      expect(line, usage).toBeDefined();
      expect(line?.slice(line.indexOf(usage) + usage.length).trim()).not.toBe('');
    }
  });

  it('documents only commands that parse', () => {
    const usages = HELP_TEXT.split('\n').flatMap((line) => /^\s+(\/\S+)/u.exec(line)?.[1] ?? []);
    expect(usages).toHaveLength(12);
    for (const name of usages) {
      expect(() => parseSlashCommand(name)).not.toThrow(/Unknown command/u);
    }
  });
});
