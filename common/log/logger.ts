import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = Object.freeze({ debug: 10, info: 20, warn: 30, error: 40 });

/** Values a log line may carry: identities appear as short fingerprints, never keys or texts. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/**
 * One structured JSON line per event (`{ts, level, event, …}`) on the given stream — stderr by
 * default, so a program's stdout stays free for its JSON-lines output. Callers pass only metadata:
 * keys, passwords, tokens and message or file contents are never logged (SECURITY.md, M).
 */
export function createLogger(options: { stream?: Writable; level?: LogLevel; name?: string } = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const threshold = LEVEL_ORDER[options.level ?? 'info'];
  const write = (level: LogLevel, event: string, fields: LogFields = {}): void => {
    if (LEVEL_ORDER[level] < threshold) return;
    const line: Record<string, unknown> = { ts: new Date().toISOString(), level, event };
    if (options.name !== undefined) line['name'] = options.name;
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) line[key] = value;
    stream.write(`${JSON.stringify(line)}\n`);
  };
  return {
    debug: (event, fields) => write('debug', event, fields),
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
    error: (event, fields) => write('error', event, fields),
  };
}

/** A logger that drops everything (tests and library users who bring their own). */
export const silentLogger: Logger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});
