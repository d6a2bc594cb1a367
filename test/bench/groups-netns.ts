/**
 * The group benchmark sends multicast, so it runs only in a network namespace of its own, like
 * `npm test` (scripts/run-tests.mjs): the entry point re-runs itself under
 * `unshare -rnm --propagation private` (a user namespace, so no real root; a network namespace
 * holding only `lo`; a mount namespace with a private /run for `ip netns`), checks there that no
 * other link exists, and only then builds the simulated LAN (test/harness/lan.ts). Where that is
 * impossible it refuses with exit status 2 and sends nothing.
 *
 * Loss is injected in the kernel: a classic-BPF tc filter (direct action) on the bridge side of a
 * receiver's veth drops that share of the IPv4 UDP frames the bridge forwards to it. (netem would
 * be the usual tool, but kernels without sch_netem exist; cls_bpf with a cBPF program needs no
 * module beyond the classifier.)
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { promisify } from 'node:util';
import { assertOnlyHarnessLinks, listLinkNames } from '../harness/netns.js';

const execFileAsync = promisify(execFile);
const STAGE_ENV = 'SALA_BENCH_GROUPS_STAGE';
const UNSHARE_ARGS = ['-rnm', '--propagation', 'private'] as const;

/** Not inside (and unable to make) a private network namespace: the benchmark must not run. */
export class NamespaceRefusedError extends Error {
  override get name(): string {
    return 'NamespaceRefusedError';
  }
}

export function isInnerStage(): boolean {
  return process.env[STAGE_ENV] === 'inner';
}

/**
 * Outer stage: runs this script again inside fresh namespaces and resolves with its exit status.
 * Throws NamespaceRefusedError where unshare is missing or refused. The inner run is killed after
 * `deadlineMs`, so the benchmark is bounded in time whatever happens inside.
 */
export async function rerunInPrivateNamespace(script: string, deadlineMs: number): Promise<number> {
  if (process.platform !== 'linux') throw new NamespaceRefusedError(`needs Linux network namespaces; this is ${process.platform}`);
  const probe = spawnSync('unshare', [...UNSHARE_ARGS, 'true'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 10_000 });
  if (probe.error !== undefined || probe.status !== 0) {
    const why = probe.error?.message ?? (probe.stderr.trim() || `exit ${String(probe.status)}`);
    throw new NamespaceRefusedError(`\`unshare ${UNSHARE_ARGS.join(' ')}\` does not work here (${why}); user namespaces must be allowed`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, [STAGE_ENV]: 'inner' };
  // Only our own inner stage may claim the namespace (see enterPrivateNamespace).
  delete env['SALA_TEST_NETNS'];
  const child = spawn('unshare', [...UNSHARE_ARGS, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)], { env, stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  const timer = setTimeout(() => {
    process.stderr.write(`bench:groups: still running after ${deadlineMs / 1000} s; stopping it.\n`);
    child.kill('SIGKILL');
  }, deadlineMs);
  try {
    return await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        process.stderr.write(`bench:groups: could not start unshare: ${err.message}\n`);
        resolve(1);
      });
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
    });
  } finally {
    clearTimeout(timer);
    for (const signal of signals) process.off(signal, forward);
  }
}

/**
 * Inner stage: refuses unless this network namespace holds nothing but `lo` (a real interface
 * means we are not where rerunInPrivateNamespace put us), then gives `ip netns` a private /run,
 * brings `lo` up and sets SALA_TEST_NETNS=1, which createLan requires (it checks the links again).
 */
export async function enterPrivateNamespace(): Promise<void> {
  const links = await listLinkNames();
  const foreign = links.filter((name) => name !== 'lo');
  if (foreign.length > 0) {
    throw new NamespaceRefusedError(`this network namespace has other interfaces (${foreign.join(', ')}); run \`npm run bench:groups\`, never the inner stage by hand`);
  }
  for (const [command, args] of [
    ['mount', ['-t', 'tmpfs', 'tmpfs', '/run']],
    ['ip', ['link', 'set', 'lo', 'up']],
  ] as const) {
    try {
      await execFileAsync(command, args);
    } catch (err) {
      throw new NamespaceRefusedError(`namespace setup failed at \`${command} ${args.join(' ')}\`: ${String(err)}`);
    }
  }
  process.env['SALA_TEST_NETNS'] = '1';
  assertOnlyHarnessLinks(await listLinkNames());
}

/** SKF_AD_OFF + SKF_AD_RANDOM: classic BPF's "load a random u32". */
const CBPF_LOAD_RANDOM = 0x1_0000_0000 - 0x1000 + 56;

/**
 * tc's `bytecode` for: an IPv4 UDP frame is dropped (TC_ACT_SHOT) with `probability`, everything
 * else passes (TC_ACT_OK). tc runs it on the Ethernet frame: ethertype at 12, IP protocol at 23.
 */
export function udpLossBytecode(probability: number): string {
  const threshold = Math.round(Math.min(1, Math.max(0, probability)) * 0xffff_ffff);
  const program: [number, number, number, number][] = [
    [0x28, 0, 0, 12], // ldh [12]
    [0x15, 0, 5, 0x0800], // jeq IPv4, else pass
    [0x30, 0, 0, 23], // ldb [23]
    [0x15, 0, 3, 17], // jeq UDP, else pass
    [0x20, 0, 0, CBPF_LOAD_RANDOM], // ld rand
    [0x35, 1, 0, threshold], // jge threshold: pass
    [0x06, 0, 0, 2], // ret TC_ACT_SHOT
    [0x06, 0, 0, 0], // ret TC_ACT_OK
  ];
  return [program.length, ...program.map((op) => op.join(' '))].join(',');
}

/** Drops `probability` of the UDP frames the bridge sends out of `veth` (the bridge side of a host's link). */
export async function addUdpLoss(veth: string, probability: number): Promise<void> {
  await execFileAsync('tc', ['qdisc', 'add', 'dev', veth, 'clsact']);
  try {
    await execFileAsync('tc', ['filter', 'add', 'dev', veth, 'egress', 'bpf', 'da', 'bytecode', udpLossBytecode(probability)]);
  } catch (err) {
    await removeUdpLoss(veth);
    throw err;
  }
}

export async function removeUdpLoss(veth: string): Promise<void> {
  await execFileAsync('tc', ['qdisc', 'del', 'dev', veth, 'clsact']).catch(() => undefined);
}
