/**
 * The child side of JsonChild: probes print one JSON object per stdout line and read commands as
 * JSON lines on stdin. No vitest imports here; probes run as plain `node dist/...js`.
 */
import { createInterface } from 'node:readline';

export type Fields = Readonly<Record<string, unknown>>;
type Cleanup = () => Promise<void> | void;

export function emit(event: string, fields: Fields = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

/** The positional argument at `index`, or a UsageError naming it. */
export function argAt(argv: readonly string[], index: number, name: string): string {
  const value = argv[index];
  if (value === undefined || value === '') throw new UsageError(`missing argument <${name}>`);
  return value;
}

export function portArg(argv: readonly string[], index: number, name: string): number {
  const text = argAt(argv, index, name);
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`<${name}> is not a port: ${text}`);
  return port;
}

/** Calls `onCommand` with every JSON object line on stdin (other lines become `warning` events). */
export function onStdinCommands(onCommand: (command: Fields) => void): void {
  createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      emit('warning', { message: 'stdin line is not JSON' });
      return;
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) onCommand(parsed as Fields);
    else emit('warning', { message: 'stdin line is not a JSON object' });
  });
}

/**
 * Runs a probe role: `start` sets things up and returns its cleanup. SIGTERM/SIGINT run the cleanup
 * and exit 0; a failure prints an `error` event (and the stack on stderr) and exits 1.
 */
export function runProbe(start: () => Promise<Cleanup>): void {
  let cleanup: Cleanup | undefined;
  let isStopping = false;
  const fail = (err: unknown): void => {
    const message = err instanceof Error ? err.message : String(err);
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
    emit('error', code === undefined ? { message } : { message, code });
    process.stderr.write(`${err instanceof Error ? (err.stack ?? message) : message}\n`);
    process.exit(1);
  };
  const stop = (): void => {
    if (isStopping) return;
    isStopping = true;
    Promise.resolve(cleanup?.())
      .then(() => process.exit(0))
      .catch(fail);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  start().then((result) => {
    cleanup = result;
    if (isStopping) stop();
  }, fail);
}
