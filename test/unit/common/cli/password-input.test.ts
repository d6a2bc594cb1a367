import { once } from 'node:events';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAX_PASSWORD_LINE_BYTES, readPassword } from '../../../../common/cli/password-input.js';
import { rejectsWithSalaError } from '../../../helpers/errors.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sala-password-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}


/** Every remaining line of a stream, read the way the JSON-lines mode will read it. */
async function remainingLines(stream: Readable): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) lines.push(line);
  return lines;
}

const REST = '{"cmd":"peers"}\n{"cmd":"send","to":"bob","text":"hi"}\n';

describe('readPassword --password-stdin', () => {
  it('returns the first line and leaves the following lines readable (one chunk)', async () => {
    const stdin = new PassThrough();
    stdin.end(`secret pw\n${REST}`);
    expect(await readPassword({ passwordStdin: true, prompt: 'Password', stdin })).toBe('secret pw');
    expect(await remainingLines(stdin)).toEqual(['{"cmd":"peers"}', '{"cmd":"send","to":"bob","text":"hi"}']);
  });

  it('returns the first line and leaves the rest readable when fed byte by byte', async () => {
    const stdin = new PassThrough();
    const password = readPassword({ passwordStdin: true, prompt: 'Password', stdin });
    for (const byte of Buffer.from(`pässwörd\n${REST}`)) stdin.write(Buffer.from([byte]));
    stdin.end();
    expect(await password).toBe('pässwörd');
    expect(await remainingLines(stdin)).toHaveLength(2);
  });

  it('leaves the rest of a real socket readable for a later data listener', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const writer = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [reader] = await accepted;
    onTestFinished(() => {
      reader.destroy();
      writer.destroy();
    });
    writer.end(`pw-from-pipe\n${REST}`);
    expect(await readPassword({ passwordStdin: true, prompt: 'Password', stdin: reader })).toBe('pw-from-pipe');
    let rest = '';
    reader.setEncoding('utf8');
    reader.on('data', (chunk: string) => (rest += chunk));
    await once(reader, 'end', { signal: AbortSignal.timeout(2_000) });
    expect(rest).toBe(REST);
  });

  it('leaves the rest of a file stream readable', async () => {
    const path = join(tempDir(), 'input.txt');
    writeFileSync(path, `from-file\n${REST}`);
    const stream = createReadStream(path);
    expect(await readPassword({ passwordStdin: true, prompt: 'Password', stdin: stream })).toBe('from-file');
    expect(await remainingLines(stream)).toHaveLength(2);
  });

  it('strips a Windows line end', async () => {
    const stdin = new PassThrough();
    stdin.end('secret\r\nrest\r\n');
    expect(await readPassword({ passwordStdin: true, prompt: 'Password', stdin })).toBe('secret');
  });

  it('takes everything when stdin ends without a line end', async () => {
    const stdin = new PassThrough();
    stdin.end('no-newline');
    expect(await readPassword({ passwordStdin: true, prompt: 'Password', stdin })).toBe('no-newline');
  });

  it('refuses an empty stdin with SALA_E_CONFIG_INVALID', async () => {
    const stdin = new PassThrough();
    stdin.end();
    expect((await rejectsWithSalaError(readPassword({ passwordStdin: true, prompt: 'Password', stdin }))).code).toBe('SALA_E_CONFIG_INVALID');
  });

  it('refuses a first line longer than the limit without waiting for its end', async () => {
    const stdin = new PassThrough();
    stdin.write('x'.repeat(MAX_PASSWORD_LINE_BYTES + 1)); // no newline and no end
    onTestFinished(() => {
      stdin.destroy();
    });
    expect((await rejectsWithSalaError(readPassword({ passwordStdin: true, prompt: 'Password', stdin }))).code).toBe('SALA_E_CONFIG_INVALID');
  });
});

describe('readPassword --password-file', () => {
  it("reads the file's first line without its line end", async () => {
    const path = join(tempDir(), 'pw.txt');
    writeFileSync(path, 'file secret\r\nsecond line\n');
    expect(await readPassword({ passwordFile: path, prompt: 'Password' })).toBe('file secret');
  });

  it('ignores a UTF-8 byte order mark (Notepad)', async () => {
    const path = join(tempDir(), 'pw.txt');
    writeFileSync(path, '\uFEFFbom secret\n');
    expect(await readPassword({ passwordFile: path, prompt: 'Password' })).toBe('bom secret');
  });

  it('refuses a missing file with SALA_E_CONFIG_INVALID naming the option', async () => {
    const err = await rejectsWithSalaError(readPassword({ passwordFile: join(tempDir(), 'absent.txt'), prompt: 'Password' }));
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
    expect(err.message).toContain('--password-file');
  });

  it('refuses a file whose first line is empty', async () => {
    const path = join(tempDir(), 'pw.txt');
    writeFileSync(path, '\nsecret\n');
    expect((await rejectsWithSalaError(readPassword({ passwordFile: path, prompt: 'Password' }))).code).toBe('SALA_E_CONFIG_INVALID');
  });

  it('refuses both --password-stdin and --password-file at once', async () => {
    const path = join(tempDir(), 'pw.txt');
    writeFileSync(path, 'secret\n');
    const err = await rejectsWithSalaError(readPassword({ passwordStdin: true, passwordFile: path, prompt: 'Password', stdin: new PassThrough() }));
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
  });
});

interface FakeTerminal {
  stdin: PassThrough & { isTTY: boolean; setRawMode: (mode: boolean) => void };
  stderr: PassThrough & { columns: number };
  screen: () => string;
  /** How many keypress listeners prompts have added so far. */
  keypressListenersAdded: () => number;
}

/** A stand-in terminal: enquirer reads keypresses from `stdin` and draws on `stderr`. */
function fakeTerminal(): FakeTerminal {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (_mode: boolean) => undefined });
  const stderr = Object.assign(new PassThrough(), { columns: 80, rows: 24, isTTY: true });
  let screen = '';
  let started = 0;
  stderr.on('data', (chunk: Buffer) => (screen += chunk.toString('utf8')));
  stdin.on('newListener', (event: string | symbol) => {
    if (event === 'keypress') {
      started += 1;
      stdin.emit('sala:prompt-started');
    }
  });
  return { stdin, stderr, screen: () => screen, keypressListenersAdded: () => started };
}

/**
 * Types `text` and Enter into the `n`th prompt, once that prompt listens for keys. Each enquirer
 * prompt adds two keypress listeners, readline's own (terminal mode) and then its own.
 */
async function typeInto(terminal: FakeTerminal, n: number, text: string): Promise<void> {
  while (terminal.keypressListenersAdded() < 2 * n) await once(terminal.stdin, 'sala:prompt-started', { signal: AbortSignal.timeout(2_000) });
  await new Promise<void>((resolve) => setImmediate(resolve)); // let the prompt finish starting
  terminal.stdin.write(`${text}\r`);
}

describe('readPassword prompt', () => {
  it('refuses a stdin that is not a terminal when no flag is given', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: false });
    const err = await rejectsWithSalaError(readPassword({ prompt: 'Password', stdin }));
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
    expect(err.message).toContain('--password-stdin');
    expect(err.message).toContain('--password-file');
  });

  it('asks on the terminal and never echoes the password', async () => {
    const terminal = fakeTerminal();
    const password = readPassword({ prompt: 'Password for bob', stdin: terminal.stdin, stderr: terminal.stderr });
    await typeInto(terminal, 1, 'typed-secret');
    expect(await password).toBe('typed-secret');
    expect(terminal.screen()).toContain('Password for bob');
    expect(terminal.screen()).not.toContain('typed-secret');
  });

  it('asks twice for a new password and accepts two equal answers', async () => {
    const terminal = fakeTerminal();
    const password = readPassword({ prompt: 'New password', confirm: true, stdin: terminal.stdin, stderr: terminal.stderr });
    await typeInto(terminal, 1, 'new-secret');
    await typeInto(terminal, 2, 'new-secret');
    expect(await password).toBe('new-secret');
    expect(terminal.screen()).toContain('Repeat the password');
  });

  it('asks again when the two answers differ', async () => {
    const terminal = fakeTerminal();
    const password = readPassword({ prompt: 'New password', confirm: true, stdin: terminal.stdin, stderr: terminal.stderr });
    await typeInto(terminal, 1, 'first-try');
    await typeInto(terminal, 2, 'typo-try');
    await typeInto(terminal, 3, 'second-try');
    await typeInto(terminal, 4, 'second-try');
    expect(await password).toBe('second-try');
    expect(terminal.screen()).toContain('differ');
  });
});
