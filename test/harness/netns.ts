/**
 * The rule for tests that need network namespaces (multicast, mDNS, simulated LANs).
 *
 * scripts/run-tests.mjs runs vitest inside a private user+network+mount namespace and sets
 * SALA_TEST_NETNS=1. Without it such tests must not run at all: their traffic would reach the
 * machine's real interfaces. On Linux under CI they fail, so a CI machine that lost the namespace
 * cannot pass by skipping; elsewhere (a laptop, macOS, Windows) they are skipped with the reason.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeEach, describe } from 'vitest';

const execFileAsync = promisify(execFile);

/** Every link the harness creates starts with this, so the isolation check can tell them apart. */
export const HARNESS_LINK_PREFIX = 'sala';

export type NetnsRequirement =
  | { readonly kind: 'available' }
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'fail'; readonly reason: string };

export class NetnsUnavailableError extends Error {
  override get name(): string {
    return 'NetnsUnavailableError';
  }
}

export class NetnsNotIsolatedError extends Error {
  override get name(): string {
    return 'NetnsNotIsolatedError';
  }
}

function isCi(env: NodeJS.ProcessEnv): boolean {
  const value = env['CI'];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** Pure form of the rule, so it can be tested for every platform on any platform. */
export function netnsRequirement(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): NetnsRequirement {
  if (env['SALA_TEST_NETNS'] === '1') return { kind: 'available' };
  if (platform === 'linux' && isCi(env)) {
    return {
      kind: 'fail',
      reason:
        'LAN tests need the private network namespace that scripts/run-tests.mjs creates, and ' +
        'SALA_TEST_NETNS=1 is not set. Run them with `npm test`; if it printed "running without a ' +
        'private network namespace", allow user namespaces (`unshare -rnm true` must work) on this CI machine.',
    };
  }
  return {
    kind: 'skip',
    reason:
      platform === 'linux'
        ? 'needs a private network namespace: run `npm test` (unshare -rnm must be permitted)'
        : `needs a Linux network namespace; not available on ${platform}`,
  };
}

/** Throws NetnsUnavailableError unless the runner's namespace is there. Sends nothing. */
export function requireNetns(): void {
  const requirement = netnsRequirement();
  if (requirement.kind !== 'available') throw new NetnsUnavailableError(requirement.reason);
}

/**
 * Throws unless every link name is loopback or harness-made. A real interface (eth0, wlan0, a
 * docker bridge) means we are not in the runner's namespace, whatever the environment says.
 */
export function assertOnlyHarnessLinks(linkNames: readonly string[]): void {
  const foreign = linkNames.filter((name) => name !== 'lo' && !name.startsWith(HARNESS_LINK_PREFIX));
  if (foreign.length > 0) {
    throw new NetnsNotIsolatedError(
      `Refusing to build a LAN: this network namespace has real interfaces (${foreign.join(', ')}). ` +
        'SALA_TEST_NETNS=1 must only be set by scripts/run-tests.mjs inside its private namespace.',
    );
  }
}

/** Names of the links in the current network namespace (`ip -j link show`, read-only). */
export async function listLinkNames(signal?: AbortSignal): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['-j', 'link', 'show'], signal === undefined ? {} : { signal });
  const parsed: unknown = JSON.parse(stdout);
  if (!Array.isArray(parsed)) throw new Error('`ip -j link show` did not print a JSON array');
  return parsed.map((entry: unknown) => {
    if (typeof entry === 'object' && entry !== null && 'ifname' in entry && typeof entry.ifname === 'string') {
      return entry.ifname;
    }
    throw new Error('`ip -j link show` printed an entry without ifname');
  });
}

/** requireNetns() plus a check of the actual links; call before creating anything. */
export async function ensureIsolatedNetns(signal?: AbortSignal): Promise<void> {
  requireNetns();
  assertOnlyHarnessLinks(await listLinkNames(signal));
}

/**
 * `describe` for tests that need namespaces. Create LANs inside the tests (`useLan`), not in
 * `beforeAll`: vitest runs a suite's `beforeAll` before the per-test skip or failure below.
 */
export function describeLan(name: string, fn: () => void): void {
  const requirement = netnsRequirement();
  switch (requirement.kind) {
    case 'available':
      describe(name, fn);
      return;
    case 'skip':
      describe(name, () => {
        beforeEach((context) => {
          context.skip(requirement.reason);
        });
        fn();
      });
      return;
    case 'fail':
      describe(name, () => {
        beforeEach(() => {
          throw new NetnsUnavailableError(requirement.reason);
        });
        fn();
      });
      return;
    default:
      assertNever(requirement);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
