import type { EventEmitter } from 'node:events';
import { createInterface, emitKeypressEvents, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import enquirer from 'enquirer';

/**
 * The interactive screen of `sala chat`: an enquirer input line at the bottom, output printed above
 * it, and one progress bar per running transfer between the two.
 *
 * How printing above the prompt works. The bottom of the screen is a "live region": the bar rows we
 * drew, then the prompt rows enquirer drew. enquirer records everything a prompt wrote since its
 * last clear in `state.buffer`, and `clear()` erases exactly those rows (it counts wrapped rows from
 * the buffer and the terminal width) and leaves the cursor at column 0 of the prompt's first row.
 * So `print()` calls the prompt's `clear()`, erases our bar rows above it (we know how many: a bar
 * is truncated to one row), writes the new lines and the bars, and asks the prompt to `render()`
 * again; `render()` redraws the prompt from its state (input and cursor), so half-typed text comes
 * back intact. Every erase-and-write step is synchronous, so it cannot interleave with a render.
 *
 * What we take over from enquirer, and why:
 * - One prompt lives for the whole session; `submit()` is overridden to hand the line on and reset
 *   the input instead of closing. enquirer's one-prompt-per-answer model would drop keys typed (or
 *   pasted) between two prompts: each prompt removes its keypress listener on close.
 * - Key input: `start()` is a no-op and this class feeds `keypress` events itself. enquirer's
 *   listener also creates a terminal-mode readline interface that keeps its own copy of the line
 *   and closes itself (pausing stdin) on Ctrl+D when *its* copy is empty, which can differ from
 *   the prompt's; it also refuses streams that are not process.stdin or a TTY.
 * - `cursorHide()`: enquirer hides the cursor on every render (it draws its own) and each call adds
 *   a listener plus process-wide SIGINT/SIGTERM handlers that call process.exit(). We hide it once
 *   and show it again in close() (or at process exit), leaving signals to the CLI.
 * - Renders are coalesced per tick, so a paste redraws once, not once per character.
 *
 * When input or output is not a TTY there is no prompt: lines are read with node:readline and
 * print() writes plain lines (no escape codes unless output is a TTY with colours).
 */

// ---------------------------------------------------------------------------------------------
// Pure helpers

/**
 * Makes untrusted text (messages, file names from other peers) safe to write to a terminal: C0
 * controls, DEL and C1 controls become visible symbols, so a peer cannot move the cursor, recolour
 * the screen, set the title or reach the clipboard with escape sequences. Keeps `\n` and `\t`
 * unless `isSingleLine`.
 */
export function sanitizeForTerminal(text: string, options: { isSingleLine?: boolean } = {}): string {
  const isSingleLine = options.isSingleLine === true;
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/gu, (ch) => {
    const code = ch.charCodeAt(0);
    if (code === 0x0a) return isSingleLine ? '\u2424' : ch;
    if (code === 0x09) return isSingleLine ? ' ' : ch;
    if (code < 0x20) return String.fromCharCode(0x2400 + code); // Control Pictures: ␛ for ESC
    if (code === 0x7f) return '\u2421';
    return '\ufffd';
  });
}

/** `[#####-----] 48%`: `width` cells between the brackets; the percentage is floored. */
export function renderProgressBar(bytes: number, total: number, width: number): string {
  const cells = Number.isFinite(width) ? Math.max(1, Math.floor(width)) : 1;
  const ratio = progressRatio(bytes, total);
  const filled = Math.floor(ratio * cells);
  const percent = Math.floor(ratio * 100);
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}] ${percent}%`;
}

function progressRatio(bytes: number, total: number): number {
  if (!Number.isFinite(total) || total <= 0) return 1; // an empty file is complete at once
  if (!Number.isFinite(bytes) || bytes <= 0) return 0;
  return Math.min(bytes / total, 1);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `1.2/2.5 MiB`: both numbers in the unit that suits `total`. */
export function formatByteProgress(bytes: number, total: number): string {
  const safeTotal = Number.isFinite(total) && total > 0 ? total : 0;
  const safeBytes = Number.isFinite(bytes) && bytes > 0 ? Math.min(bytes, safeTotal) : 0;
  let exponent = 0;
  while (exponent < BYTE_UNITS.length - 1 && safeTotal >= 1024 ** (exponent + 1)) exponent += 1;
  const unit = BYTE_UNITS[exponent] ?? 'B';
  if (exponent === 0) return `${safeBytes}/${safeTotal} B`;
  const scale = 1024 ** exponent;
  return `${(safeBytes / scale).toFixed(1)}/${(safeTotal / scale).toFixed(1)} ${unit}`;
}

/**
 * One progress row, at most `columns` characters: `[#####-----] 48% report.pdf 1.2/2.5 MiB`.
 * The label is shortened with "…" first; it is sanitised here, so callers pass names as received.
 */
export function formatProgressLine(label: string, bytes: number, total: number, columns: number): string {
  const maxChars = Math.max(10, Math.floor(columns));
  const bar = renderProgressBar(bytes, total, maxChars >= 60 ? 20 : 10);
  const sizes = formatByteProgress(bytes, total);
  const room = maxChars - bar.length - sizes.length - 2;
  const chars = [...sanitizeForTerminal(label, { isSingleLine: true })];
  if (room < 2) return truncate(`${bar} ${sizes}`, maxChars);
  const shown = chars.length <= room ? chars.join('') : `${chars.slice(0, room - 1).join('')}…`;
  return `${bar} ${shown} ${sizes}`;
}

function truncate(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join('')}…`;
}

// ---------------------------------------------------------------------------------------------
// The enquirer prompt

const CSI = '\u001b[';
const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;
/** Cursor to the start of the previous row, then erase that row. */
const ERASE_ROW_ABOVE = `${CSI}1F${CSI}2K`;

export type PrintTone = 'plain' | 'muted' | 'info' | 'success' | 'warning' | 'error';

const TONE_CODES: Readonly<Record<Exclude<PrintTone, 'plain'>, readonly [string, string]>> = Object.freeze({
  muted: [`${CSI}2m`, `${CSI}22m`],
  info: [`${CSI}36m`, `${CSI}39m`],
  success: [`${CSI}32m`, `${CSI}39m`],
  warning: [`${CSI}33m`, `${CSI}39m`],
  error: [`${CSI}31m`, `${CSI}39m`],
});

/** A readline `keypress` event, as enquirer also understands it. */
interface KeyEvent {
  name?: string | undefined;
  sequence?: string | undefined;
  ctrl?: boolean | undefined;
  meta?: boolean | undefined;
  shift?: boolean | undefined;
  code?: string | undefined;
}

/** The part of enquirer's StringPrompt (lib/types/string.js, lib/prompt.js) this file relies on. */
interface EnquirerStringPrompt extends EventEmitter {
  readonly state: { buffer: string };
  readonly stdout: Writable;
  input: string;
  cursor: number;
  keypress(input: string | undefined, key?: KeyEvent): Promise<void>;
  render(): Promise<void>;
  clear(lines?: number): void;
  write(text: string): void;
  run(): Promise<unknown>;
  alert(): void;
  start(): void;
  cursorHide(): void;
  prefix(): Promise<string>;
  separator(): Promise<string>;
  message(): Promise<string>;
  header(): Promise<string>;
  footer(): Promise<string>;
  hint(): Promise<string>;
  submit(): Promise<void>;
  cancel(err?: unknown): Promise<void>;
  last(): void;
}

type EnquirerStringPromptClass = new (options: Record<string, unknown>) => EnquirerStringPrompt;

// enquirer's typings declare only the base Prompt; Input exists at runtime (index.js `define`).
const EnquirerInput = (enquirer as unknown as { Input: EnquirerStringPromptClass }).Input;

interface LinePromptHooks {
  promptText(): string;
  isColor: boolean;
  onLine(line: string): void;
  onEnd(reason: 'eof' | 'interrupt'): void;
}

const MAX_HISTORY_LINES = 100;

class LinePrompt extends EnquirerInput {
  readonly #hooks: LinePromptHooks;
  readonly #history: string[] = [];
  #historyIndex = 0;
  #draft = '';
  #pendingRender: Promise<void> | undefined;
  #lastKeyName: string | undefined;
  #isCursorHidden = false;
  #isDetached = false;

  constructor(hooks: LinePromptHooks, stdin: Readable, stdout: Writable) {
    super({ name: 'line', message: '', stdin, stdout });
    this.#hooks = hooks;
  }

  /** Stops all drawing for good; the caller has erased the prompt. */
  detach(): void {
    this.#isDetached = true;
  }

  showCursor(): void {
    if (!this.#isCursorHidden) return;
    this.#isCursorHidden = false;
    this.stdout.write(SHOW_CURSOR);
  }

  override start(): void {
    // ChatTerminal feeds keys; see the header comment.
  }

  override cursorHide(): void {
    if (this.#isCursorHidden || this.#isDetached) return;
    this.#isCursorHidden = true;
    this.stdout.write(HIDE_CURSOR);
  }

  override write(text: string): void {
    if (!this.#isDetached) super.write(text);
  }

  override clear(lines?: number): void {
    if (!this.#isDetached) super.clear(lines);
  }

  override render(): Promise<void> {
    if (this.#isDetached) return Promise.resolve();
    this.#pendingRender ??= Promise.resolve().then(() => {
      this.#pendingRender = undefined;
      return this.#isDetached ? undefined : super.render();
    });
    return this.#pendingRender;
  }

  override prefix(): Promise<string> {
    return Promise.resolve('');
  }

  override separator(): Promise<string> {
    return Promise.resolve('');
  }

  override message(): Promise<string> {
    const text = sanitizeForTerminal(this.#hooks.promptText(), { isSingleLine: true }).trimEnd();
    return Promise.resolve(this.#hooks.isColor ? `${CSI}1m${text}${CSI}22m` : text);
  }

  override header(): Promise<string> {
    return Promise.resolve('');
  }

  override footer(): Promise<string> {
    return Promise.resolve('');
  }

  override hint(): Promise<string> {
    return Promise.resolve('');
  }

  override keypress(input: string | undefined, key: KeyEvent = {}): Promise<void> {
    if (this.#isDetached) return Promise.resolve();
    const previous = this.#lastKeyName;
    this.#lastKeyName = key.name;
    if (key.ctrl === true && key.name === 'c') {
      this.#hooks.onEnd('interrupt');
      return Promise.resolve();
    }
    if (key.ctrl === true && key.name === 'd' && this.input === '') {
      this.#hooks.onEnd('eof');
      return Promise.resolve();
    }
    // A pasted Windows line end arrives as \r then \n: one Enter, not two.
    if (key.name === 'enter' && previous === 'return') return Promise.resolve();
    return super.keypress(input, key);
  }

  override submit(): Promise<void> {
    const line = this.input;
    this.input = '';
    this.cursor = 0;
    if (line.trim() !== '' && this.#history.at(-1) !== line) {
      this.#history.push(line);
      if (this.#history.length > MAX_HISTORY_LINES) this.#history.shift();
    }
    this.#historyIndex = this.#history.length;
    this.#draft = '';
    this.#hooks.onLine(line);
    return this.render();
  }

  /** Escape (and enquirer's other "cancel" keys) clears the line instead of ending the prompt. */
  override cancel(): Promise<void> {
    this.input = '';
    this.cursor = 0;
    return this.render();
  }

  /** Up/Down walk through the lines sent this session, like a shell. */
  up(): Promise<void> {
    if (this.#historyIndex === 0) {
      this.alert();
      return Promise.resolve();
    }
    if (this.#historyIndex === this.#history.length) this.#draft = this.input;
    this.#historyIndex -= 1;
    return this.#showLine(this.#history[this.#historyIndex] ?? '');
  }

  down(): Promise<void> {
    if (this.#historyIndex >= this.#history.length) {
      this.alert();
      return Promise.resolve();
    }
    this.#historyIndex += 1;
    return this.#showLine(this.#history[this.#historyIndex] ?? this.#draft);
  }

  home(): Promise<void> {
    this.cursor = 0;
    return this.render();
  }

  end(): Promise<void> {
    this.cursor = this.input.length;
    return this.render();
  }

  /** enquirer's Ctrl+E puts the cursor before the last character; a line editor puts it after. */
  override last(): void {
    void this.end();
  }

  /** Ctrl+U ("undo" in enquirer's key map, unimplemented there): delete before the cursor. */
  undo(): Promise<void> {
    this.input = this.input.slice(this.cursor);
    this.cursor = 0;
    return this.render();
  }

  #showLine(line: string): Promise<void> {
    this.input = line;
    this.cursor = line.length;
    return this.render();
  }
}

// ---------------------------------------------------------------------------------------------
// ChatTerminal

export type TerminalInput = Readable & {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

export type TerminalOutput = Writable & {
  isTTY?: boolean;
  columns?: number;
  hasColors?: () => boolean;
};

/** Why `lines()` ended: Ctrl+D or end of input, Ctrl+C, or close(). */
export type TerminalEndReason = 'eof' | 'interrupt' | 'closed';

export interface ChatTerminalOptions {
  /** Shown before the input, like `alice> ` (rendered trimmed, plus one space). */
  prompt: string;
  input?: TerminalInput;
  output?: TerminalOutput;
  /** Colour print tones and the prompt; default: output is a TTY that has colours. */
  isColor?: boolean;
  /** Leave `alice> text` on screen after Enter (interactive mode only); default true. */
  echoInput?: boolean;
}

interface ProgressBar {
  label: string;
  bytes: number;
  total: number;
}

/** Bars shown at once; more transfers are summarised in one row so the prompt stays on screen. */
const MAX_VISIBLE_BARS = 4;
/** Non-interactive input is paused when this many lines wait for the consumer. */
const LINE_QUEUE_HIGH_WATER = 64;
/** Remembered finished transfer ids, so a repeated final progress report prints nothing. */
const MAX_FINISHED_IDS = 256;

export class ChatTerminal {
  /** True when the prompt is drawn (input and output are TTYs); false for plain line mode. */
  readonly isInteractive: boolean;

  readonly #input: TerminalInput;
  readonly #output: TerminalOutput;
  readonly #isColor: boolean;
  readonly #isEchoing: boolean;
  readonly #prompt: LinePrompt | undefined;
  readonly #reader: Interface | undefined;
  readonly #wasRaw: boolean;
  #promptText: string;

  readonly #queue: string[] = [];
  #wakers: (() => void)[] = [];
  #endReason: TerminalEndReason | undefined;
  #isClosed = false;
  #isReaderPaused = false;

  readonly #bars = new Map<string, ProgressBar>();
  readonly #finishedIds = new Set<string>();
  #drawnBars: string[] = [];

  constructor(options: ChatTerminalOptions) {
    this.#input = options.input ?? process.stdin;
    this.#output = options.output ?? process.stdout;
    this.#promptText = options.prompt;
    this.#isEchoing = options.echoInput ?? true;
    const isOutputTty = this.#output.isTTY === true;
    this.#isColor = options.isColor ?? (isOutputTty && (this.#output.hasColors?.() ?? true));
    this.#wasRaw = this.#input.isRaw === true;
    this.isInteractive = this.#input.isTTY === true && typeof this.#input.setRawMode === 'function' && isOutputTty;

    if (this.isInteractive) {
      this.#prompt = new LinePrompt(
        {
          promptText: () => this.#promptText,
          isColor: this.#isColor,
          onLine: (line) => this.#onPromptLine(line),
          onEnd: (reason) => this.#endInput(reason),
        },
        this.#input,
        this.#output,
      );
      emitKeypressEvents(this.#input);
      this.#input.setRawMode?.(true);
      this.#input.on('keypress', this.#onKeypress);
      this.#input.on('end', this.#onInputEnd);
      process.once('exit', this.#onProcessExit);
      this.#input.resume();
      this.#prompt.run().then(undefined, () => undefined); // never settles: submit() is ours
    } else {
      this.#reader = createInterface({ input: this.#input, terminal: false, crlfDelay: Infinity });
      this.#reader.on('line', (line) => this.#pushLine(line));
      this.#reader.on('close', () => this.#endInput('eof'));
    }
  }

  /** Why input ended, once it has. */
  get endReason(): TerminalEndReason | undefined {
    return this.#endReason;
  }

  /**
   * The submitted lines, in order, until Ctrl+D, Ctrl+C, end of input or close(). Meant for one
   * consumer; lines submitted while the consumer is busy wait in order.
   */
  async *lines(): AsyncGenerator<string, void, undefined> {
    for (;;) {
      const line = this.#queue.shift();
      if (line !== undefined) {
        if (this.#isReaderPaused && this.#queue.length < LINE_QUEUE_HIGH_WATER / 2) {
          this.#isReaderPaused = false;
          this.#reader?.resume();
        }
        yield line;
        continue;
      }
      if (this.#endReason !== undefined) return;
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  /**
   * Shows `text` (one or more lines) above the prompt; `text` is sanitised, so pass it raw. After
   * close() it still writes, as plain lines.
   */
  print(text: string, tone: PrintTone = 'plain'): void {
    const lines = text
      .replace(/\r\n/gu, '\n')
      .split('\n')
      .map((line) => this.#style(sanitizeForTerminal(line), tone));
    this.#writeAbove(lines);
  }

  /** Changes the prompt text (for example to show the current conversation). */
  setPrompt(text: string): void {
    this.#promptText = text;
    this.#requestRender();
  }

  /**
   * Shows or updates the progress bar of transfer `id`. When `bytes` reaches `total` the bar becomes
   * a normal printed line. `label` (the file name) is remembered from the first call that gives it;
   * without one the id is shown. Without a prompt, only the finished line is printed.
   */
  progress(id: string, bytes: number, total: number, label?: string): void {
    if (this.#isClosed) return;
    const isDone = bytes >= total;
    let bar = this.#bars.get(id);
    if (bar === undefined) {
      if (isDone && this.#finishedIds.has(id)) return;
      bar = { label: label ?? id, bytes, total };
      this.#bars.set(id, bar);
    } else {
      bar.bytes = bytes;
      bar.total = total;
      if (label !== undefined) bar.label = label;
    }
    if (isDone) {
      this.#bars.delete(id);
      this.#finishedIds.add(id);
      if (this.#finishedIds.size > MAX_FINISHED_IDS) {
        const oldest = this.#finishedIds.values().next();
        if (oldest.done !== true) this.#finishedIds.delete(oldest.value);
      }
      this.#writeAbove([formatProgressLine(bar.label, bytes, total, this.#barColumns())]);
      return;
    }
    if (!this.isInteractive) return;
    const next = this.#barLines();
    if (next.length === this.#drawnBars.length && next.every((row, i) => row === this.#drawnBars[i])) return;
    this.#writeAbove([]);
  }

  /** Removes the bar of a transfer that ended without completing (failed, cancelled, declined). */
  endProgress(id: string): void {
    if (!this.#bars.delete(id) || this.#isClosed) return;
    this.#writeAbove([]);
  }

  /** Ends input, erases the prompt and bars, and restores the terminal. Idempotent. */
  close(): void {
    if (this.#isClosed) return;
    this.#endInput('closed');
    this.#bars.clear();
    this.#writeAbove([]);
    this.#isClosed = true;
    this.#queue.length = 0;
    this.#wake();
  }

  // -- internals ------------------------------------------------------------------------------

  readonly #onKeypress = (sequence: string | undefined, key: KeyEvent | undefined): void => {
    this.#prompt?.keypress(sequence, key ?? {}).then(undefined, () => undefined);
  };

  readonly #onInputEnd = (): void => {
    this.#endInput('eof');
  };

  readonly #onProcessExit = (): void => {
    this.#prompt?.showCursor();
  };

  #onPromptLine(line: string): void {
    if (this.#isEchoing) {
      const echo = `${sanitizeForTerminal(this.#promptText, { isSingleLine: true }).trimEnd()} ${sanitizeForTerminal(line, { isSingleLine: true })}`;
      this.#writeAbove([echo]);
    }
    this.#pushLine(line);
  }

  #pushLine(line: string): void {
    if (this.#endReason !== undefined) return;
    this.#queue.push(line);
    if (this.#reader !== undefined && !this.#isReaderPaused && this.#queue.length >= LINE_QUEUE_HIGH_WATER) {
      this.#isReaderPaused = true;
      this.#reader.pause();
    }
    this.#wake();
  }

  #wake(): void {
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }

  /** Stops reading: the prompt disappears and keys go back to the terminal; print() still works. */
  #endInput(reason: TerminalEndReason): void {
    if (this.#endReason !== undefined) return;
    this.#endReason = reason;
    const prompt = this.#prompt;
    if (prompt !== undefined) {
      prompt.clear();
      prompt.detach();
      prompt.showCursor();
      this.#input.off('keypress', this.#onKeypress);
      this.#input.off('end', this.#onInputEnd);
      process.off('exit', this.#onProcessExit);
      try {
        this.#input.setRawMode?.(this.#wasRaw);
      } catch {
        // The TTY is already gone (hang-up): there is no mode left to restore.
      }
      this.#input.pause();
    } else if (reason !== 'eof') {
      this.#reader?.close();
    }
    this.#wake();
  }

  /** Writes lines above the live region (bars, then prompt) and redraws it. */
  #writeAbove(lines: readonly string[]): void {
    if (!this.isInteractive || this.#isClosed) {
      if (lines.length > 0) this.#output.write(lines.map((line) => `${line}\n`).join(''));
      return;
    }
    this.#prompt?.clear(); // erases the prompt's rows; cursor at column 0 of its first row
    let out = ERASE_ROW_ABOVE.repeat(this.#drawnBars.length);
    for (const line of lines) out += `${line}\n`;
    this.#drawnBars = this.#barLines();
    for (const row of this.#drawnBars) out += `${row}\n`;
    if (out !== '') this.#output.write(out);
    this.#requestRender();
  }

  #requestRender(): void {
    if (this.#endReason !== undefined) return;
    // A failed redraw leaves the previous frame; the next key or print() draws again.
    this.#prompt?.render().then(undefined, () => undefined);
  }

  #barLines(): string[] {
    if (this.#isClosed) return [];
    const columns = this.#barColumns();
    const bars = [...this.#bars.values()];
    const rows = bars
      .slice(0, MAX_VISIBLE_BARS)
      .map((bar) => this.#style(formatProgressLine(bar.label, bar.bytes, bar.total, columns), 'info'));
    if (bars.length > MAX_VISIBLE_BARS) rows.push(this.#style(`… and ${bars.length - MAX_VISIBLE_BARS} more transfers`, 'muted'));
    return rows;
  }

  /** One column spare: a row that exactly fills the width leaves some terminals mid-wrap. */
  #barColumns(): number {
    const columns = this.#output.columns;
    return (columns !== undefined && Number.isFinite(columns) && columns > 10 ? columns : 80) - 1;
  }

  #style(text: string, tone: PrintTone): string {
    if (!this.#isColor || tone === 'plain' || text === '') return text;
    const [open, close] = TONE_CODES[tone];
    return `${open}${text}${close}`;
  }
}
