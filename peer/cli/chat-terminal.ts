import { createInterface, emitKeypressEvents, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { LinePrompt, type KeyEvent } from './line-prompt.js';
import { CSI, formatProgressLine, sanitizeForTerminal, styleTone, type PrintTone } from './terminal-format.js';

// The text helpers were first exported from here; importers of this module keep finding them.
export {
  formatByteProgress,
  formatProgressLine,
  renderProgressBar,
  sanitizeForTerminal,
  type PrintTone,
} from './terminal-format.js';

/**
 * The interactive screen of `sala chat`: an enquirer input line at the bottom (LinePrompt, in
 * line-prompt.ts), output printed above it, and one progress bar per running transfer between the
 * two.
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
 * This class feeds the prompt its `keypress` events and owns raw mode and the cursor's restoration;
 * line-prompt.ts says what is taken over from enquirer and why.
 *
 * When input or output is not a TTY there is no prompt: lines are read with node:readline and
 * print() writes plain lines (no escape codes unless output is a TTY with colours).
 */

/** Cursor to the start of the previous row, then erase that row. */
const ERASE_ROW_ABOVE = `${CSI}1F${CSI}2K`;

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
    return this.#isColor ? styleTone(text, tone) : text;
  }
}
