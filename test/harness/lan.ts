/**
 * A simulated LAN inside the runner's private network namespace (see netns.ts).
 *
 * One Linux bridge with multicast snooping off (so every multicast frame floods to every port,
 * like a dumb switch) and, per host, a network namespace joined to the bridge by a veth pair whose
 * inner end is `eth0` with 10.A.B.<index+1>/24, a default route and multicast on. Hosts run node
 * child programs through `ip netns exec`. Bridge, namespaces and subnet are unique per LAN, so
 * vitest workers build LANs concurrently. A LAN is never connected to any real interface.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { JsonChild, type JsonChildOptions } from '../../common/process/index.js';
import { HARNESS_LINK_PREFIX, ensureIsolatedNetns } from './netns.js';

const execFileAsync = promisify(execFile);

export const MAX_LAN_HOSTS = 200;
/** Concurrent LANs in one runner namespace; also bounds the subnet numbering below. */
const MAX_LANS = 1_000;

export interface LanHost {
  readonly index: number;
  /** The host's network namespace, also the name of the bridge-side end of its veth. */
  readonly name: string;
  /** IPv4 address of the host's eth0. */
  readonly address: string;
}

export interface LanOptions {
  readonly signal?: AbortSignal;
}

export class HarnessCommandError extends Error {
  override get name(): string {
    return 'HarnessCommandError';
  }
}

/** The repository root: the nearest folder above this module holding a package.json. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('no package.json above test/harness');
    dir = parent;
  }
  return dir;
}

/** Absolute path of a compiled file in dist/, e.g. distScript('test/harness/lan-probe.js'). */
export function distScript(relativePath: string): string {
  const file = path.join(repoRoot(), 'dist', relativePath);
  if (!existsSync(file)) {
    throw new Error(`${file} does not exist; build first with \`npx tsc -p tsconfig.build.json\` (npm test does).`);
  }
  return file;
}

async function ip(args: readonly string[], signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  try {
    const { stdout } = await execFileAsync('ip', args, signal === undefined ? {} : { signal });
    return stdout;
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr).trim() : '';
    throw new HarnessCommandError(`\`ip ${args.join(' ')}\` failed: ${stderr || String(err)}`, { cause: err });
  }
}

function isAlreadyExists(err: unknown): boolean {
  return err instanceof HarnessCommandError && /exists/i.test(err.message);
}

function isAlreadyGone(err: unknown): boolean {
  return err instanceof HarnessCommandError && /cannot find|does not exist|no such file/i.test(err.message);
}

export class Lan {
  readonly hosts: readonly LanHost[];
  readonly bridge: string;
  /** e.g. '10.100.3.0/24' */
  readonly subnet: string;
  readonly #children = new Set<JsonChild>();
  #destroyed: Promise<void> | undefined;

  /** Use createLan() or useLan(); the constructor only records what createLan() built. */
  constructor(bridge: string, subnet: string, hosts: readonly LanHost[]) {
    this.bridge = bridge;
    this.subnet = subnet;
    this.hosts = hosts;
  }

  host(index: number): LanHost {
    const host = this.hosts[index];
    if (host === undefined) throw new RangeError(`host index ${index} is outside 0..${this.hosts.length - 1}`);
    return host;
  }

  /** Starts `node <args>` in host `index`'s namespace; the child is killed by destroy(). */
  spawn(index: number, args: readonly string[], options: JsonChildOptions = {}): JsonChild {
    if (this.#destroyed !== undefined) throw new Error(`LAN ${this.bridge} is destroyed`);
    const host = this.host(index);
    const child = new JsonChild('ip', ['netns', 'exec', host.name, process.execPath, ...args], {
      label: options.label ?? `${host.name} ${args.map((arg) => path.basename(arg)).join(' ')}`,
      cwd: options.cwd ?? repoRoot(),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    this.#children.add(child);
    return child;
  }

  /** Runs a command to completion in host `index`'s namespace and returns its stdout. */
  async exec(index: number, command: string, args: readonly string[], options: LanOptions = {}): Promise<string> {
    return ip(['netns', 'exec', this.host(index).name, command, ...args], options.signal);
  }

  /** Cuts host `index` off the bridge, like pulling its cable: its eth0 loses carrier. */
  async linkDown(index: number): Promise<void> {
    await ip(['link', 'set', this.host(index).name, 'down']);
  }

  /** Reconnects host `index`; with STP off the bridge port forwards again at once. */
  async linkUp(index: number): Promise<void> {
    await ip(['link', 'set', this.host(index).name, 'up']);
  }

  /**
   * Stops the bridge flooding multicast to host `index` (unicast still flows): a Wi-Fi access point
   * that does not forward multicast to one client. The host's own multicast still loops back to it
   * and still reaches the others.
   */
  async dropMulticastTo(index: number): Promise<void> {
    await execFileAsync('bridge', ['link', 'set', 'dev', this.host(index).name, 'mcast_flood', 'off']);
  }

  /** Kills every child, then deletes veths, namespaces and the bridge. Idempotent. */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  async #teardown(): Promise<void> {
    await Promise.all([...this.#children].map((child) => child.kill()));
    this.#children.clear();
    await removeLan(this.bridge, this.hosts.map((host) => host.name));
  }
}

/**
 * Deletes what createLan made, ignoring what is already gone. The veth goes first and explicitly:
 * a deleted namespace frees its devices asynchronously, and the names are reused by later LANs.
 */
async function removeLan(bridge: string, hostNames: readonly string[]): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (args: readonly string[]): Promise<void> => {
    try {
      await ip(args);
    } catch (err) {
      if (!isAlreadyGone(err)) errors.push(err);
    }
  };
  for (const name of hostNames) {
    await attempt(['link', 'delete', name]);
    await attempt(['netns', 'delete', name]);
  }
  await attempt(['link', 'delete', bridge]);
  if (errors.length > 0) throw new AggregateError(errors, `could not fully remove LAN ${bridge}`);
}

/** Claims a free LAN number by creating its bridge: `ip link add` is atomic across workers. */
async function claimBridge(signal?: AbortSignal): Promise<number> {
  for (let lanNumber = 0; lanNumber < MAX_LANS; lanNumber += 1) {
    try {
      await ip(['link', 'add', `${HARNESS_LINK_PREFIX}br${lanNumber}`, 'type', 'bridge', 'mcast_snooping', '0'], signal);
      return lanNumber;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  throw new Error(`all ${MAX_LANS} LAN numbers are in use; are LANs being destroyed?`);
}

async function addHost(bridge: string, host: LanHost, signal?: AbortSignal): Promise<void> {
  try {
    await ip(['netns', 'add', host.name], signal);
  } catch (err) {
    // Left behind by a crashed worker; our bridge claim makes the name ours.
    if (!isAlreadyExists(err)) throw err;
    await ip(['netns', 'delete', host.name], signal);
    await ip(['netns', 'add', host.name], signal);
  }
  await ip(['link', 'add', host.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name], signal);
  await ip(['link', 'set', host.name, 'master', bridge], signal);
  await ip(['link', 'set', host.name, 'addrgenmode', 'none'], signal);
  await ip(['link', 'set', host.name, 'up'], signal);
  const inHost = (args: readonly string[]): Promise<string> => ip(['-n', host.name, ...args], signal);
  await inHost(['link', 'set', 'lo', 'up']);
  await inHost(['link', 'set', 'eth0', 'multicast', 'on']);
  await inHost(['address', 'add', `${host.address}/24`, 'dev', 'eth0']);
  await inHost(['link', 'set', 'eth0', 'up']);
  // Multicast sends need a route; a default route via eth0 covers 224.0.0.0/4 and is what a
  // single-homed machine on a LAN has.
  await inHost(['route', 'add', 'default', 'dev', 'eth0']);
}

/**
 * Waits until every host's bridge port forwards. The kernel moves a new port to "forwarding" from
 * its link watcher, which can lag up to about a second on a loaded machine: polled with a deadline.
 */
async function assertPortsForwarding(bridge: string, hosts: readonly LanHost[], signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const stdout = await execFileAsync('bridge', ['-j', 'link', 'show'], signal === undefined ? {} : { signal });
    const parsed: unknown = JSON.parse(stdout.stdout);
    const states = new Map<string, string>();
    if (Array.isArray(parsed)) {
      for (const entry of parsed as unknown[]) {
        if (typeof entry !== 'object' || entry === null) continue;
        const { ifname, master, state } = entry as Record<string, unknown>;
        if (master === bridge && typeof ifname === 'string' && typeof state === 'string') states.set(ifname, state);
      }
    }
    const notReady = hosts.find((host) => states.get(host.name) !== 'forwarding');
    if (notReady === undefined) return;
    if (Date.now() > deadline) throw new Error(`bridge port ${notReady.name} is ${states.get(notReady.name) ?? 'missing'}, not forwarding`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Builds a LAN of `hostCount` hosts. Refuses (before creating anything) unless it runs inside the
 * runner's namespace. Call destroy() when done, or use useLan() inside a test.
 */
export async function createLan(hostCount: number, options: LanOptions = {}): Promise<Lan> {
  const { signal } = options;
  signal?.throwIfAborted();
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > MAX_LAN_HOSTS) {
    throw new RangeError(`hostCount must be an integer in 1..${MAX_LAN_HOSTS}, got ${hostCount}`);
  }
  await ensureIsolatedNetns(signal);
  const lanNumber = await claimBridge(signal);
  const bridge = `${HARNESS_LINK_PREFIX}br${lanNumber}`;
  const subnetPrefix = `10.${100 + Math.floor(lanNumber / 256)}.${lanNumber % 256}`;
  const hosts: LanHost[] = Array.from({ length: hostCount }, (_, index) => ({
    index,
    name: `${HARNESS_LINK_PREFIX}${lanNumber}h${index + 1}`,
    address: `${subnetPrefix}.${index + 1}`,
  }));
  try {
    // The test process's own namespace must stay address-free apart from lo: no IPv6 link-local
    // address on the bridge or the host-side veths (the LAN lives inside the host namespaces).
    await ip(['link', 'set', bridge, 'addrgenmode', 'none'], signal);
    await ip(['link', 'set', bridge, 'up'], signal);
    for (const host of hosts) await addHost(bridge, host, signal);
    await assertPortsForwarding(bridge, hosts, signal);
  } catch (err) {
    await removeLan(bridge, hosts.map((host) => host.name)).catch(() => {});
    throw err;
  }
  return new Lan(bridge, `${subnetPrefix}.0/24`, hosts);
}

/** createLan() whose destroy() is registered with onTestFinished; call it inside a test. */
export function useLan(hostCount: number, options: LanOptions = {}): Promise<Lan> {
  const creating = createLan(hostCount, options);
  // Registered before the await so a test that fails mid-creation still cleans up.
  onTestFinished(async () => {
    const lan = await creating.catch(() => undefined);
    await lan?.destroy();
  });
  return creating;
}
