import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { readPassword } from '../common/cli/password-input.js';
import { createLogger, initCrypto, resolveDataDir, SalaError, silentLogger, toSalaError, type Logger, type LogLevel } from '../common/index.js';
import { parseJsonCommand, type ChatCommand } from './cli/chat-commands.js';
import { runChatCommand } from './cli/command-runner.js';
import { runInteractive } from './cli/interactive-chat.js';
import { errorEvent, historyEvent, jsonLine, type JsonEvent } from './cli/json-events.js';
import { addConnectionOptions, parseServerAddress, type ConnectionOptions } from './connection-options.js';
import { checkInterfaceAddress } from './listen-endpoints.js';
import { Peer, type PeerOptions } from './peer.js';
import { promptForServerCode } from './prompts.js';

export interface ChatOptions extends ConnectionOptions {
  user: string;
  host?: string;
  port?: string;
  interface?: string;
  downloads?: string;
  acceptFiles?: boolean;
  maxFileSize?: string;
}

/** `sala [chat] --user NAME …`: logs in and chats, interactively or as JSON lines (CONTRACT.md). */
export function addChatCommand(program: Command): void {
  addConnectionOptions(
    program
      .command('chat', { isDefault: true })
      .description('log in and chat (the default command): interactive, or JSON lines with --json')
      .requiredOption('--user <name>', 'your user name')
      .option('--host <address>', 'address to accept direct links on (default: all interfaces)')
      .option('--port <n>', 'port to accept direct links on (default: any free port)')
      .option('--interface <address>', "this computer's address on the classroom LAN (for mDNS, the addresses others dial, and group multicast)")
      .option('--downloads <dir>', 'where received files go (default: the Sala folder in your Downloads folder)')
      .option('--accept-files', 'accept every offered file without asking (still announced)')
      .option('--max-file-size <bytes>', 'refuse offered files larger than this (like 2G, 500M; default: no limit but free space)'),
  ).action(async (options: ChatOptions) => {
    process.exitCode = await chat(options);
  });
}

/** Runs the chat until quit; resolves with the exit code. */
async function chat(options: ChatOptions): Promise<number> {
  const isJson = options.json === true;
  const emit = (event: JsonEvent): void => {
    if (isJson) process.stdout.write(jsonLine(event));
  };
  let peer: Peer;
  try {
    peer = await Peer.connect(await peerOptions(options, isJson));
  } catch (err) {
    const error = toSalaError(err, 'SALA_E_SERVER_UNREACHABLE', 'The login failed.');
    emit(errorEvent(error));
    throw error;
  }
  return isJson ? runJsonLines(peer) : runInteractive(peer);
}

async function peerOptions(options: ChatOptions, isJson: boolean): Promise<PeerOptions> {
  await initCrypto();
  const server = options.server === undefined ? undefined : parseServerAddress(options.server);
  const interfaceAddress = options.interface === undefined ? undefined : checkInterfaceAddress(options.interface);
  const listenPort = options.port === undefined ? undefined : parsePort(options.port);
  const dataDir = resolveDataDir('peer', { flag: options.data });
  const isInteractive = !isJson && process.stdin.isTTY;
  const password = await readPassword({
    passwordStdin: options.passwordStdin,
    passwordFile: options.passwordFile,
    prompt: `Password for ${options.user}`,
  });
  return {
    user: options.user,
    password,
    dataDir,
    server,
    serverKey: options.serverKey,
    askForCode: isInteractive ? promptForServerCode : undefined,
    isMdnsEnabled: options.mdns,
    interfaceAddress,
    listenHost: options.host,
    listenPort,
    downloadsDir: options.downloads === undefined ? undefined : resolve(options.downloads),
    isAutoAcceptFiles: options.acceptFiles === true,
    maxFileBytes: options.maxFileSize === undefined ? undefined : parseByteSize(options.maxFileSize, '--max-file-size'),
    logger: cliLogger(isJson),
  };
}

/** `1048576`, `500K`, `20M`, `2G` (powers of 1024). */
export function parseByteSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  const units: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
  const bytes = match === null ? Number.NaN : Number(match[1]) * (units[(match[2] ?? '').toUpperCase()] ?? Number.NaN);
  if (!Number.isFinite(bytes) || bytes < 1) throw new SalaError('SALA_E_CONFIG_INVALID', `${option} must be a size like 500M or 2G, not "${text.slice(0, 20)}".`);
  return Math.floor(bytes);
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 0 || port > 65_535) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `--port must be a number from 0 to 65535, not "${text.slice(0, 20)}".`);
  }
  return port;
}

/**
 * Diagnostics go to stderr as JSON lines, at the level SALA_LOG asks for (debug, info, warn, error).
 * The interactive mode is silent unless asked: log lines would break into the prompt.
 */
function cliLogger(isJson: boolean): Logger {
  const level = process.env['SALA_LOG'];
  if (level === 'debug' || level === 'info' || level === 'warn' || level === 'error') return createLogger({ level: level satisfies LogLevel, name: 'sala' });
  return isJson ? createLogger({ level: 'warn', name: 'sala' }) : silentLogger;
}

/**
 * JSON-lines mode: one event per stdout line, one command per stdin line (after the password line,
 * with --password-stdin). Commands run one at a time, in order. `quit`, the end of stdin, Ctrl+C and
 * SIGTERM all log out and exit 0; a fatal error (kicked) is emitted and exits 1.
 */
async function runJsonLines(peer: Peer): Promise<number> {
  const emit = (event: JsonEvent): void => void process.stdout.write(jsonLine(event));
  return new Promise<number>((resolve) => {
    let isDone = false;
    const finish = (code: number, isLogout: boolean): void => {
      if (isDone) return;
      isDone = true;
      reader.close();
      process.stdin.pause();
      const stop = isLogout ? peer.quit() : peer.close();
      void stop.finally(() => resolve(code));
    };
    peer.once('error', (error) => {
      emit(errorEvent(error));
      finish(1, false);
    });
    // Handlers first: a script may signal as soon as it reads `ready`.
    onStopSignals(() => finish(0, true));
    emit({ event: 'ready', user: peer.user, sessionId: peer.sessionId, listen: peer.listen, serverFingerprint: peer.serverFingerprint });
    forwardPeerEvents(peer, emit);

    const reader = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
    const queue: string[] = [];
    let isRunning = false;
    let isInputEnded = false;
    const drain = async (): Promise<void> => {
      if (isRunning) return;
      isRunning = true;
      for (let line = queue.shift(); line !== undefined && !isDone; line = queue.shift()) {
        if (await runJsonLine(peer, line, emit) === 'quit') finish(0, true);
      }
      isRunning = false;
      // A script that closes stdin is done: log out like `quit`, after the commands it sent.
      if (isInputEnded) finish(0, true);
    };
    reader.on('line', (line) => {
      queue.push(line);
      void drain();
    });
    reader.on('close', () => {
      isInputEnded = true;
      void drain();
    });
  });
}

/** One JSON command line: parsed, run, answered (or an `error` event with its `ref`). */
async function runJsonLine(peer: Peer, line: string, emit: (event: JsonEvent) => void): Promise<'quit' | 'done'> {
  if (line.trim() === '') return 'done';
  let command: ChatCommand;
  try {
    command = parseJsonCommand(line);
  } catch (err) {
    emit(errorEvent(toSalaError(err, 'SALA_E_COMMAND_INVALID', 'The command could not be read.')));
    return 'done';
  }
  try {
    const answer = await runChatCommand(peer, command);
    const ref = command.ref === undefined ? {} : { ref: command.ref };
    if (answer.kind === 'peers') emit({ event: 'peers', peers: answer.peers, ...ref });
    else if (answer.kind === 'history') emit({ ...historyEvent(answer.with, answer.messages), ...ref });
    return answer.kind === 'quit' ? 'quit' : 'done';
  } catch (err) {
    emit(errorEvent(toSalaError(err, 'SALA_E_COMMAND_INVALID', 'The command failed.'), command.ref));
    return 'done';
  }
}

function forwardPeerEvents(peer: Peer, emit: (event: JsonEvent) => void): void {
  peer.on('peer.online', ({ user }) => emit({ event: 'peer.online', user }));
  peer.on('peer.offline', ({ user }) => emit({ event: 'peer.offline', user }));
  peer.on('sent', (sent) => emit({ event: 'sent', ...sent }));
  peer.on('delivered', (delivered) => emit({ event: 'delivered', ...delivered }));
  peer.on('message', (message) => emit({ event: 'message', id: message.id, from: message.from, text: message.text, at: new Date(message.at).toISOString() }));
  peer.on('link.up', (link) => emit({ event: 'link.up', ...link }));
  peer.on('link.down', ({ user, sessionId, code }) => emit({ event: 'link.down', user, sessionId, ...(code === undefined ? {} : { code }) }));
  peer.on('group.joined', (joined) => emit({ event: 'group.joined', ...joined }));
  peer.on('group.left', (left) => emit({ event: 'group.left', ...left }));
  peer.on('group.sent', (sent) => emit({ event: 'group.sent', ...sent }));
  peer.on('group.message', (message) => emit({ event: 'group.message', id: message.id, group: message.group, from: message.from, text: message.text, at: new Date(message.at).toISOString() }));
  peer.on('server.disconnected', () => emit({ event: 'server.disconnected' }));
  peer.on('server.reconnected', () => emit({ event: 'server.reconnected' }));
  peer.on('warning', (warning) => emit({ event: 'warning', ...warning }));
  peer.on('file.offered', (offered) => emit({ event: 'file.offered', ...offered }));
  peer.on('file.offer', (offer) => emit({ event: 'file.offer', ...offer }));
  peer.on('file.progress', (progress) => emit({ event: 'file.progress', ...progress }));
  peer.on('file.sent', (sent) => emit({ event: 'file.sent', ...sent }));
  peer.on('file.received', (received) => emit({ event: 'file.received', ...received }));
  peer.on('file.declined', (declined) => emit({ event: 'file.declined', ...declined }));
  peer.on('file.failed', (failed) => emit({ event: 'file.failed', ...failed }));
}

/** Ctrl+C (SIGINT; also Ctrl+Break on Windows) and SIGTERM end the chat cleanly: log out, exit 0. */
export function onStopSignals(stop: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const) {
    try {
      process.once(signal, stop);
    } catch {
      // a signal this platform does not have
    }
  }
}
