import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import enquirer from 'enquirer';
import { CSI, sanitizeForTerminal } from './terminal-format.js';

/**
 * The input line of `sala chat`: an enquirer Input that lives for the whole session. ChatTerminal
 * owns the screen around it (see chat-terminal.ts) and feeds it keys.
 *
 * What we take over from enquirer, and why:
 * - One prompt lives for the whole session; `submit()` is overridden to hand the line on and reset
 *   the input instead of closing. enquirer's one-prompt-per-answer model would drop keys typed (or
 *   pasted) between two prompts: each prompt removes its keypress listener on close.
 * - Key input: `start()` is a no-op and the owner feeds `keypress` events itself. enquirer's
 *   listener also creates a terminal-mode readline interface that keeps its own copy of the line
 *   and closes itself (pausing stdin) on Ctrl+D when *its* copy is empty, which can differ from
 *   the prompt's; it also refuses streams that are not process.stdin or a TTY.
 * - `cursorHide()`: enquirer hides the cursor on every render (it draws its own) and each call adds
 *   a listener plus process-wide SIGINT/SIGTERM handlers that call process.exit(). We hide it once
 *   and show it again through showCursor() (the owner calls it on close or at process exit),
 *   leaving signals to the CLI.
 * - Renders are coalesced per tick, so a paste redraws once, not once per character.
 */

const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;

/** A readline `keypress` event, as enquirer also understands it. */
export interface KeyEvent {
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

/** What the prompt's owner supplies: the prompt text, its colour, and where lines and the end go. */
export interface LinePromptHooks {
  promptText(): string;
  isColor: boolean;
  onLine(line: string): void;
  onEnd(reason: 'eof' | 'interrupt'): void;
}

const MAX_HISTORY_LINES = 100;

export class LinePrompt extends EnquirerInput {
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
    // The owner feeds keys; see the header comment.
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
