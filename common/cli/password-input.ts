import { closeSync, openSync, readSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import Enquirer from 'enquirer';
import { SalaError } from '../errors.js';

/**
 * Where a command's password comes from (CONTRACT.md: never the command line):
 *   --password-stdin     the first line of stdin; the rest of stdin stays unread for later use
 *                        (the JSON-lines commands of `sala --json` follow the password line);
 *   --password-file F    the first line of the file F;
 *   otherwise            an interactive prompt on stderr that echoes nothing but asterisks, asked
 *                        twice for a new password; refused when stdin is not a terminal, so a
 *                        script that forgot the flag fails at once instead of hanging.
 */
export interface PasswordInputOptions {
  passwordStdin?: boolean | undefined;
  passwordFile?: string | undefined;
  /** The prompt's question, e.g. `New password for alice`. */
  prompt: string;
  /** Ask twice and require both to match (new passwords). Only for the interactive prompt. */
  confirm?: boolean | undefined;
  stdin?: (Readable & { isTTY?: boolean }) | undefined;
  stderr?: Writable | undefined;
}

/**
 * Longest first line accepted. Passwords are at most 1,024 bytes (SALA_E_PASSWORD_REJECTED); a much
 * longer line means the wrong input was piped in, and we do not want to buffer it.
 */
export const MAX_PASSWORD_LINE_BYTES = 4096;
const MAX_PROMPT_ATTEMPTS = 3;

export async function readPassword(options: PasswordInputOptions): Promise<string> {
  const stdin = options.stdin ?? process.stdin;
  if (options.passwordStdin === true && options.passwordFile !== undefined) {
    throw new SalaError('SALA_E_CONFIG_INVALID', 'Use either --password-stdin or --password-file, not both.');
  }
  if (options.passwordStdin === true) return nonEmpty(await readFirstLine(stdin), 'The first line of stdin');
  if (options.passwordFile !== undefined) return nonEmpty(readFirstLineOfFile(options.passwordFile), `The first line of ${options.passwordFile}`);
  if (stdin.isTTY !== true) {
    throw new SalaError(
      'SALA_E_CONFIG_INVALID',
      'No terminal to ask for the password: pass --password-stdin (first line of stdin) or --password-file FILE.',
    );
  }
  return promptPassword(options.prompt, options.confirm === true, stdin, options.stderr ?? process.stderr);
}

function nonEmpty(password: string, where: string): string {
  if (password === '') throw new SalaError('SALA_E_CONFIG_INVALID', `${where} is empty; it must hold the password.`);
  return password;
}

function lineTooLong(where: string): SalaError {
  return new SalaError('SALA_E_CONFIG_INVALID', `${where} is longer than ${MAX_PASSWORD_LINE_BYTES} bytes; it must hold only the password.`);
}

/** Drops the line's CR (Windows line ends); the LF is already gone. */
function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * The first line of a stream, without its line end, leaving everything after the LF in the stream.
 *
 * How the rest stays available: the stream is read in paused mode ('readable' + read()), so no
 * byte is consumed that we do not see; the chunk holding the LF is split and its remainder put
 * back with unshift(). Removing our 'readable' listener resets the stream's flowing state to
 * "not yet decided", so a later consumer — readline, a 'data' listener, for await — starts exactly
 * at the next line. A caller that will never read stdin again should pause() it, so that an open
 * pipe does not keep the process alive.
 *
 * At end of stream without an LF, everything read is the line (`printf secret |`).
 */
export function readFirstLine(stream: Readable, where = 'The first line of stdin'): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    if (stream.readableEnded) {
      resolve('');
      return;
    }
    const parts: Buffer[] = [];
    let total = 0;
    const finish = (err: SalaError | Error | undefined, line?: string): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (err !== undefined) reject(err);
      else resolve(stripCr(line ?? ''));
    };
    const onReadable = (): void => {
      for (let chunk: unknown = stream.read(); chunk !== null; chunk = stream.read()) {
        const isText = typeof chunk === 'string';
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
        const newline = bytes.indexOf(0x0a);
        const lineBytes = newline === -1 ? bytes : bytes.subarray(0, newline);
        total += lineBytes.length;
        if (total > MAX_PASSWORD_LINE_BYTES) {
          finish(lineTooLong(where));
          return;
        }
        parts.push(lineBytes);
        if (newline !== -1) {
          const rest = bytes.subarray(newline + 1);
          // A string-mode stream gets its remainder back as a string (the LF is one byte, so the
          // split never cuts a UTF-8 sequence).
          if (rest.length > 0) stream.unshift(isText ? rest.toString('utf8') : rest);
          finish(undefined, Buffer.concat(parts).toString('utf8'));
          return;
        }
      }
    };
    const onEnd = (): void => finish(undefined, Buffer.concat(parts).toString('utf8'));
    const onError = (err: Error): void =>
      finish(new SalaError('SALA_E_CONFIG_INVALID', `Cannot read the password from stdin: ${err.message}`, { cause: err }));
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/** The first line of a file; reads at most MAX_PASSWORD_LINE_BYTES + 2 bytes of it. */
export function readFirstLineOfFile(path: string): string {
  const where = `The first line of ${path}`;
  const buffer = Buffer.alloc(MAX_PASSWORD_LINE_BYTES + 2);
  let length = 0;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `Option "--password-file" names ${path}, which cannot be read: ${(err as Error).message}`, { cause: err });
  }
  try {
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (buffer.subarray(0, length).includes(0x0a) || length === buffer.length) break;
    }
  } catch (err) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd);
  }
  const data = buffer.subarray(0, length);
  const newline = data.indexOf(0x0a);
  const lineBytes = newline === -1 ? data : data.subarray(0, newline);
  const line = stripCr(lineBytes.toString('utf8')).replace(/^\uFEFF/, ''); // Notepad's BOM is not part of the password
  if (Buffer.byteLength(line, 'utf8') > MAX_PASSWORD_LINE_BYTES) throw lineTooLong(where);
  return line;
}

async function promptPassword(message: string, confirm: boolean, stdin: Readable, stderr: Writable): Promise<string> {
  const ask = async (question: string): Promise<string> => {
    try {
      const answer = await new Enquirer<{ password: string }>().prompt({
        type: 'password',
        name: 'password',
        message: question,
        // enquirer types want the process streams; any TTY-like pair works.
        stdin: stdin as NodeJS.ReadStream,
        stdout: stderr as NodeJS.WriteStream,
        validate: (value: string) => value.length > 0 || 'Enter a password.',
      });
      return answer.password;
    } catch (err) {
      throw new SalaError('SALA_E_ABORTED', 'Password entry was cancelled.', { cause: err });
    }
  };
  if (!confirm) return ask(message);
  for (let attempt = 1; attempt <= MAX_PROMPT_ATTEMPTS; attempt += 1) {
    const first = await ask(message);
    const second = await ask('Repeat the password');
    if (first === second) return first;
    stderr.write('The two passwords differ; try again.\n');
  }
  throw new SalaError('SALA_E_ABORTED', `The two passwords differed ${MAX_PROMPT_ATTEMPTS} times; nothing was changed.`);
}
