import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as chatTerminalModule from '../../../../peer/cli/chat-terminal.js';
import { ChatTerminal, type ChatTerminalOptions } from '../../../../peer/cli/chat-terminal.js';
import * as terminalFormat from '../../../../peer/cli/terminal-format.js';

/** Keyboard side of a fake TTY: what the tests type, plus the raw-mode switch a TTY has. */
class FakeKeyboard extends PassThrough {
  isTTY: boolean;
  isRaw = false;
  readonly rawModes: boolean[] = [];

  constructor(isTTY = true) {
    super();
    this.isTTY = isTTY;
  }

  setRawMode(mode: boolean): this {
    this.isRaw = mode;
    this.rawModes.push(mode);
    return this;
  }
}

/** Screen side: records every byte written. */
class FakeScreen extends Writable {
  isTTY: boolean;
  columns = 60;
  text = '';

  constructor(isTTY = true) {
    super({ decodeStrings: false });
    this.isTTY = isTTY;
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    this.emit('wrote');
    callback();
  }

  /** The visible screen: the recorded bytes replayed through a small VT100 model. */
  rows(): string[] {
    return replay(this.text, this.columns);
  }
}

/**
 * Replays what a terminal would show, for the escape sequences this UI and enquirer use (cursor
 * moves, erase line, SGR ignored). "\n" also returns the carriage, as a TTY's ONLCR does in raw mode.
 */
function replay(raw: string, columns: number): string[] {
  const grid: string[][] = [[]];
  let row = 0;
  let col = 0;
  // eslint-disable-next-line no-control-regex
  const token = /\u001b\[([?0-9;]*)([A-Za-z])|\r|\n|\u0007|[^\u001b\r\n\u0007]/gu;
  for (const match of raw.matchAll(token)) {
    const [text, params = '', final] = match;
    if (final !== undefined) {
      const n = Math.max(1, Number.parseInt(params || '1', 10) || 1);
      if (final === 'A') row = Math.max(0, row - n);
      else if (final === 'B') row += n;
      else if (final === 'C') col = Math.min(columns - 1, col + n);
      else if (final === 'D') col = Math.max(0, Math.min(col, columns - 1) - n);
      else if (final === 'G') col = n - 1;
      else if (final === 'E') [row, col] = [row + n, 0];
      else if (final === 'F') [row, col] = [Math.max(0, row - n), 0];
      else if (final === 'K' && params === '2') grid[row] = [];
      else if (final === 'K') grid[row] = (grid[row] ?? []).slice(0, col);
      continue;
    }
    if (text === '\r') col = 0;
    else if (text === '\n') [row, col] = [row + 1, 0];
    else if (text !== '\u0007') {
      if (col >= columns) [row, col] = [row + 1, 0];
      const line = (grid[row] ??= []);
      line[col] = text;
      col += 1;
    }
  }
  const rows = Array.from({ length: grid.length }, (_, i) => Array.from(grid[i] ?? [], (c) => c ?? ' ').join('').trimEnd());
  while (rows.length > 0 && rows.at(-1) === '') rows.pop();
  return rows;
}

function setup(options: Partial<ChatTerminalOptions> & { isTTY?: boolean } = {}) {
  const keyboard = new FakeKeyboard(options.isTTY ?? true);
  const screen = new FakeScreen(options.isTTY ?? true);
  const terminal = new ChatTerminal({ prompt: 'alice> ', input: keyboard, output: screen, isColor: false, ...options });
  onTestFinished(() => terminal.close());
  return { keyboard, screen, terminal };
}

/** Waits until the screen satisfies `predicate`, failing after a deadline. */
async function screenShows(screen: FakeScreen, predicate: (rows: string[]) => boolean): Promise<void> {
  const signal = AbortSignal.timeout(2_000);
  while (!predicate(screen.rows())) await once(screen, 'wrote', { signal });
}

async function nextLines(terminal: ChatTerminal, count: number): Promise<string[]> {
  const iterator = terminal.lines();
  const lines: string[] = [];
  const deadline = AbortSignal.timeout(2_000);
  const aborted = new Promise<never>((_, reject) => {
    deadline.addEventListener('abort', () => reject(new Error('no line before the deadline')), { once: true });
  });
  while (lines.length < count) {
    const next = await Promise.race([iterator.next(), aborted]);
    if (next.done === true) break;
    lines.push(next.value);
  }
  return lines;
}

async function ended(terminal: ChatTerminal): Promise<string[]> {
  return nextLines(terminal, Number.POSITIVE_INFINITY);
}

describe('ChatTerminal, interactive', () => {
  it('delivers submitted lines in order, even when pasted in one chunk', async () => {
    const { keyboard, terminal } = setup();
    keyboard.write('hello\rworld\r');
    expect(await nextLines(terminal, 2)).toEqual(['hello', 'world']);
  });

  it('turns a pasted \\r\\n into one Enter', async () => {
    const { keyboard, terminal } = setup();
    keyboard.write('one\r\ntwo\r\n');
    keyboard.write('\u0004');
    expect(await ended(terminal)).toEqual(['one', 'two']);
  });

  it('draws the prompt and leaves the submitted line on screen', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('hi\r');
    await nextLines(terminal, 1);
    await screenShows(screen, (rows) => rows.join('\n') === 'alice> hi\nalice>');
  });

  it('keeps the partly typed text after a printed line', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('hel');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> hel');
    const mark = screen.text.length;

    terminal.print('bob: are you there?');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> hel');

    expect(screen.rows()).toEqual(['bob: are you there?', 'alice> hel']);
    const after = stripVTControlCharacters(screen.text.slice(mark));
    expect(after.indexOf('bob: are you there?')).toBeGreaterThanOrEqual(0);
    expect(after.indexOf('alice> hel')).toBeGreaterThan(after.indexOf('bob: are you there?'));

    keyboard.write('lo\r');
    expect(await nextLines(terminal, 1)).toEqual(['hello']);
  });

  it('keeps the cursor position inside the typed text across a print', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('helo\u001b[D'); // cursor left, between "l" and "o"
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> helo');
    terminal.print('bob: hi');
    await screenShows(screen, (rows) => rows.join('|') === 'bob: hi|alice> helo');
    keyboard.write('l\r');
    expect(await nextLines(terminal, 1)).toEqual(['hello']);
  });

  it('keeps a long input that wraps past the screen width intact across prints', async () => {
    const { keyboard, screen, terminal } = setup();
    const long = 'x'.repeat(100);
    keyboard.write(long);
    await screenShows(screen, (rows) => rows.join('') === `alice> ${long}`);
    terminal.print('first');
    terminal.print('second');
    await screenShows(screen, (rows) => rows.length === 4);
    expect(screen.rows().slice(0, 2)).toEqual(['first', 'second']);
    expect(screen.rows().slice(2).join('')).toBe(`alice> ${long}`);
  });

  it('prints several lines of one text as separate rows', async () => {
    const { screen, terminal } = setup();
    terminal.print('line one\r\nline two');
    await screenShows(screen, (rows) => rows.join('|') === 'line one|line two|alice>');
  });

  it('neutralises escape sequences in printed text', async () => {
    const { screen, terminal } = setup();
    terminal.print('evil\u001b[2J\u001b]0;title\u0007done\rX');
    await screenShows(screen, (rows) => rows.length === 2);
    expect(screen.rows()[0]).toBe('evil\u241b[2J\u241b]0;title\u2407done\u240dX');
  });

  it('recalls the previous line with the up arrow', async () => {
    const { keyboard, terminal } = setup();
    keyboard.write('/peers\r');
    await nextLines(terminal, 1);
    keyboard.write('\u001b[A\r');
    expect(await nextLines(terminal, 1)).toEqual(['/peers']);
  });

  it('clears the typed text on Escape instead of ending', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('oops');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> oops');
    // A lone ESC is told apart from an escape sequence by a pause (readline waits 500 ms).
    keyboard.write('\u001b');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice>');
    keyboard.write('ok\r');
    expect(await nextLines(terminal, 1)).toEqual(['ok']);
    expect(terminal.endReason).toBeUndefined();
  });

  it('ends the lines on Ctrl+C and gives the terminal back', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('half typed');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> half typed');
    keyboard.write('\u0003');
    expect(await ended(terminal)).toEqual([]);
    expect(terminal.endReason).toBe('interrupt');
    expect(keyboard.rawModes).toEqual([true, false]);
    expect(keyboard.listenerCount('keypress')).toBe(0);
    expect(screen.rows()).toEqual([]);
    expect(screen.text.endsWith('\u001b[?25h')).toBe(true);
  });

  it('ends the lines on Ctrl+D at an empty prompt', async () => {
    const { keyboard, terminal } = setup();
    keyboard.write('\u0004');
    expect(await ended(terminal)).toEqual([]);
    expect(terminal.endReason).toBe('eof');
  });

  it('deletes forward on Ctrl+D when there is text', async () => {
    const { keyboard, terminal } = setup();
    keyboard.write('abc\u001b[D\u001b[D\u0004\r');
    expect(await nextLines(terminal, 1)).toEqual(['ac']);
  });

  it('ends the lines when the input stream ends', async () => {
    const { keyboard, terminal } = setup();
    keyboard.end('last\r');
    expect(await ended(terminal)).toEqual(['last']);
    expect(terminal.endReason).toBe('eof');
  });

  it('still prints after input has ended', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('\u0003');
    await ended(terminal);
    terminal.print('Logged out.');
    expect(screen.rows()).toEqual(['Logged out.']);
  });

  it('shows a progress bar above the prompt and updates it in place', async () => {
    const { keyboard, screen, terminal } = setup();
    keyboard.write('typing');
    terminal.progress('t1', 0, 2_621_440, 'report.pdf');
    terminal.progress('t1', 1_258_292, 2_621_440);
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> typing');
    expect(screen.rows()).toEqual(['[####------] 48% report.pdf 1.2/2.5 MiB', 'alice> typing']);

    terminal.print('bob: hi');
    await screenShows(screen, (rows) => rows.length === 3 && rows.at(-1) === 'alice> typing');
    expect(screen.rows()[0]).toBe('bob: hi');
  });

  it('turns a finished bar into a printed line', async () => {
    const { screen, terminal } = setup();
    terminal.progress('t1', 10, 20, 'a.txt');
    terminal.progress('t1', 20, 20);
    terminal.progress('t1', 20, 20); // a repeated final report prints nothing more
    await screenShows(screen, (rows) => rows.at(-1) === 'alice>');
    expect(screen.rows()).toEqual(['[##########] 100% a.txt 20/20 B', 'alice>']);
  });

  it('removes a bar whose transfer ended without completing', async () => {
    const { screen, terminal } = setup();
    terminal.progress('t1', 10, 20, 'a.txt');
    terminal.progress('t2', 5, 20, 'b.txt');
    terminal.endProgress('t1');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice>');
    expect(screen.rows()).toEqual(['[##--------] 25% b.txt 5/20 B', 'alice>']);
  });

  it('does not redraw when a progress report changes nothing visible', () => {
    const { screen, terminal } = setup();
    terminal.progress('t1', 1_000_000, 100_000_000, 'big.iso');
    const before = screen.text.length;
    terminal.progress('t1', 1_000_001, 100_000_000);
    expect(screen.text.length).toBe(before);
  });

  it('close() erases the prompt and bars, restores the terminal and is idempotent', async () => {
    const exitListeners = process.listenerCount('exit');
    const { keyboard, screen, terminal } = setup();
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);
    terminal.progress('t1', 1, 2, 'x');
    keyboard.write('draft');
    await screenShows(screen, (rows) => rows.at(-1) === 'alice> draft');
    const lines = ended(terminal);
    terminal.close();
    expect(await lines).toEqual([]);
    expect(terminal.endReason).toBe('closed');
    expect(screen.rows()).toEqual([]);
    expect(keyboard.rawModes).toEqual([true, false]);
    expect(keyboard.isPaused()).toBe(true);
    expect(process.listenerCount('exit')).toBe(exitListeners);
    const written = screen.text.length;
    terminal.close();
    expect(screen.text.length).toBe(written);
    expect(keyboard.rawModes).toEqual([true, false]);
  });

  it('restores the raw mode the input had before', () => {
    const keyboard = new FakeKeyboard();
    keyboard.isRaw = true;
    const terminal = new ChatTerminal({ prompt: '> ', input: keyboard, output: new FakeScreen(), isColor: false });
    terminal.close();
    expect(keyboard.rawModes).toEqual([true, true]);
  });

  it('colours tones only when asked to', async () => {
    const { screen, terminal } = setup({ isColor: true });
    terminal.print('failed', 'error');
    await screenShows(screen, (rows) => rows.includes('failed'));
    expect(screen.text).toContain('\u001b[31mfailed\u001b[39m');
  });
});

describe('ChatTerminal, plain (not a TTY)', () => {
  it('reads lines with no prompt and writes no escape codes', async () => {
    const { keyboard, screen, terminal } = setup({ isTTY: false });
    expect(terminal.isInteractive).toBe(false);
    keyboard.end('/peers\r\n/quit\n');
    terminal.print('hello', 'error');
    terminal.progress('t1', 5, 10, 'a.txt');
    terminal.progress('t1', 10, 10);
    expect(await ended(terminal)).toEqual(['/peers', '/quit']);
    expect(terminal.endReason).toBe('eof');
    expect(screen.text).toBe('hello\n[##########] 100% a.txt 10/10 B\n');
    expect(keyboard.rawModes).toEqual([]);
  });

  it('is plain when only the input is a TTY', () => {
    const keyboard = new FakeKeyboard(true);
    const screen = new FakeScreen(false);
    const terminal = new ChatTerminal({ prompt: '> ', input: keyboard, output: screen });
    onTestFinished(() => terminal.close());
    expect(terminal.isInteractive).toBe(false);
    terminal.print('x', 'error');
    expect(screen.text).toBe('x\n');
  });

  it('pauses the input while many lines wait for the consumer', async () => {
    const { keyboard, terminal } = setup({ isTTY: false });
    keyboard.write(Array.from({ length: 200 }, (_, i) => `line ${i}\n`).join(''));
    const first = await nextLines(terminal, 1);
    expect(first).toEqual(['line 0']);
    keyboard.end();
    const rest = await ended(terminal);
    expect(rest).toHaveLength(199);
    expect(rest.at(-1)).toBe('line 199');
  });

  it('close() ends the lines and is idempotent', async () => {
    const { terminal, screen } = setup({ isTTY: false });
    const lines = ended(terminal);
    terminal.close();
    terminal.close();
    expect(await lines).toEqual([]);
    expect(terminal.endReason).toBe('closed');
    expect(screen.text).toBe('');
  });
});

describe('chat-terminal module', () => {
  it('still exports the text helpers that moved to terminal-format', () => {
    expect(chatTerminalModule.sanitizeForTerminal).toBe(terminalFormat.sanitizeForTerminal);
    expect(chatTerminalModule.renderProgressBar).toBe(terminalFormat.renderProgressBar);
    expect(chatTerminalModule.formatByteProgress).toBe(terminalFormat.formatByteProgress);
    expect(chatTerminalModule.formatProgressLine).toBe(terminalFormat.formatProgressLine);
  });
});
