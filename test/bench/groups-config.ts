import type { GroupTuning } from '../../peer/groups/group-service-options.js';
import { BenchConfigError } from './config.js';

/** What one `npm run bench:groups` run measures; every field can be changed from the environment. */
export interface GroupsBenchConfig {
  receivers: number;
  /** Messages per second the one sender sends, for `seconds`. */
  perSecond: number;
  seconds: number;
  /** Messages before the measured phases (not reported): JIT, first-use costs. */
  warmup: number;
  /** Share of UDP frames dropped on the way to each receiver in the second phase; 0: no such phase. */
  lossPercent: number;
  textBytes: number;
  /** GroupService tuning of every member: BENCH_TUNING of the rate, with SALA_BENCH_GROUPS_TUNING over it. */
  tuning: Partial<GroupTuning>;
  /** Node flags for the member processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
  memberNodeArgs: readonly string[];
}

/**
 * What 1,000 messages/s needs (GROUP_TUNING_DEFAULTS are deliberately far lower, sized for people
 * typing): the sender's budget above the rate; receivers accepting the rate plus repairs from one
 * member (default 100/s, burst 256); and, for repair under loss, a repair budget for about one
 * lost datagram in a hundred per receiver (default 30/s) and NACK budgets to match (default 10/s).
 */
export function benchTuning(perSecond: number): Partial<GroupTuning> {
  return {
    sendPerSecond: Math.ceil(perSecond * 1.1),
    sendBurst: Math.max(128, Math.ceil(perSecond / 4)),
    receivePerSecond: perSecond * 2,
    receiveBurst: Math.max(256, perSecond),
    repairsPerSecond: Math.max(30, Math.ceil(perSecond / 5)),
    repairBurst: Math.max(64, Math.ceil(perSecond / 4)),
    nacksPerSecond: 50,
    nackBurst: 50,
  };
}

function number(text: string, name: string, min: number, max: number, isInteger = true): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max || (isInteger && !Number.isInteger(value))) {
    throw new BenchConfigError(`${name} must be ${isInteger ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

function tuningOverride(text: string, name: string): Partial<GroupTuning> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'number')) {
    throw new BenchConfigError(`${name} must be a JSON object of GroupService tuning numbers, e.g. {"repairsPerSecond":30}`);
  }
  // Checked by the members' GroupService (SALA_E_CONFIG_INVALID names a bad option).
  return parsed as Partial<GroupTuning>;
}

export function readGroupsBenchConfig(env: NodeJS.ProcessEnv): GroupsBenchConfig {
  const read = <T>(name: string, parse: (text: string) => T, fallback: T): T => {
    const text = env[name];
    return text === undefined || text.trim() === '' ? fallback : parse(text);
  };
  const perSecond = read('SALA_BENCH_GROUPS_RATE', (t) => number(t, 'SALA_BENCH_GROUPS_RATE', 1, 20_000), 1_000);
  return {
    receivers: read('SALA_BENCH_GROUPS_RECEIVERS', (t) => number(t, 'SALA_BENCH_GROUPS_RECEIVERS', 1, 50), 10),
    perSecond,
    seconds: read('SALA_BENCH_GROUPS_SECONDS', (t) => number(t, 'SALA_BENCH_GROUPS_SECONDS', 1, 60), 10),
    warmup: read('SALA_BENCH_GROUPS_WARMUP', (t) => number(t, 'SALA_BENCH_GROUPS_WARMUP', 1, 100_000), 500),
    lossPercent: read('SALA_BENCH_GROUPS_LOSS', (t) => number(t, 'SALA_BENCH_GROUPS_LOSS', 0, 50, false), 1),
    textBytes: read('SALA_BENCH_GROUPS_TEXT_BYTES', (t) => number(t, 'SALA_BENCH_GROUPS_TEXT_BYTES', 48, 900), 100),
    tuning: { ...benchTuning(perSecond), ...read('SALA_BENCH_GROUPS_TUNING', (t) => tuningOverride(t, 'SALA_BENCH_GROUPS_TUNING'), {}) },
    memberNodeArgs: (env['SALA_BENCH_GROUPS_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
  };
}
