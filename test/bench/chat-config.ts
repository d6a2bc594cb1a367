import { BenchConfigError } from './config.js';

/** What one `npm run bench:chat` run measures; every field can be changed from the environment. */
export interface ChatBenchConfig {
  /** Measured sequential round trips per run (send → ack), after `warmup`. */
  pings: number;
  warmup: number;
  /** Measured round trips of the echo case (send → the receiver's reply). */
  echoPings: number;
  /** Bytes of each chat text, and of each raw TCP ping. */
  textBytes: number;
  /** Runs of the round-trip and throughput cases, each with a fresh pair of peers. */
  repeats: number;
  /** Messages per throughput run. */
  messages: number;
  /** Unacknowledged messages the sender allows itself in the throughput runs. */
  inFlight: number;
  cases: ReadonlySet<ChatCase>;
  /** Node flags for the two peer processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
  peerNodeArgs: readonly string[];
}

/** rtt: send → ack; echo: send → reply; flood: messages/s; limit: the default link rate limit at work. */
export type ChatCase = 'rtt' | 'echo' | 'flood' | 'limit';
const CHAT_CASES: readonly ChatCase[] = ['rtt', 'echo', 'flood', 'limit'];

function positiveInt(text: string, name: string): number {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) throw new BenchConfigError(`${name} must be a positive integer`);
  return value;
}

function cases(text: string, name: string): ReadonlySet<ChatCase> {
  const picked = new Set<ChatCase>();
  for (const word of text.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
    const value = CHAT_CASES.find((c) => c === word);
    if (value === undefined) throw new BenchConfigError(`${name} takes a comma list of ${CHAT_CASES.join(', ')}`);
    picked.add(value);
  }
  if (picked.size === 0) throw new BenchConfigError(`${name} must name at least one of ${CHAT_CASES.join(', ')}`);
  return picked;
}

export function readChatBenchConfig(env: NodeJS.ProcessEnv): ChatBenchConfig {
  const read = <T>(name: string, parse: (text: string, name: string) => T, fallback: T): T => {
    const text = env[name];
    return text === undefined || text.trim() === '' ? fallback : parse(text, name);
  };
  const config: ChatBenchConfig = {
    pings: read('SALA_BENCH_CHAT_PINGS', positiveInt, 10_000),
    warmup: read('SALA_BENCH_CHAT_WARMUP', positiveInt, 1_000),
    echoPings: read('SALA_BENCH_CHAT_ECHO_PINGS', positiveInt, 2_000),
    textBytes: read('SALA_BENCH_CHAT_TEXT_BYTES', positiveInt, 100),
    repeats: read('SALA_BENCH_CHAT_REPEATS', positiveInt, 2),
    messages: read('SALA_BENCH_CHAT_MESSAGES', positiveInt, 5_000),
    inFlight: read('SALA_BENCH_CHAT_IN_FLIGHT', positiveInt, 32),
    cases: read('SALA_BENCH_CHAT_CASES', cases, new Set(CHAT_CASES)),
    peerNodeArgs: (env['SALA_BENCH_PEER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
  };
  if (config.textBytes < 16 || config.textBytes > 60_000) throw new BenchConfigError('SALA_BENCH_CHAT_TEXT_BYTES must be between 16 and 60000');
  return config;
}
