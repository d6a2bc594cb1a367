/**
 * A small real file system for disk-full tests: a tmpfs of a few MiB, mounted in the private mount
 * namespace that scripts/run-tests.mjs runs vitest in. Use it inside `describeLan` (test/harness/netns.ts),
 * which skips such tests on a laptop without the namespace and fails them under CI on Linux; inside
 * the namespace a mount that does not work fails the test, never skips it.
 */
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { onTestFinished } from 'vitest';
import { requireNetns } from '../harness/netns.js';
import { tempDir } from './rendezvous.js';

/** Mounts a tmpfs of `sizeBytes` on a fresh temp dir; unmounted (before the dir is removed) when the test ends. */
export function mountTmpfs(sizeBytes: number): string {
  // Outside the runner's mount namespace this would mount on the machine itself: never.
  requireNetns();
  const dir = tempDir('sala-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`cannot mount a tmpfs on ${dir} in the test namespace: ${stderr || (err as Error).message}`, { cause: err });
  }
  // Registered after tempDir's removal, so it runs before it (onTestFinished hooks run in reverse).
  onTestFinished(() => {
    execFileSync('umount', ['-l', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  });
  return dir;
}

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
export function freeBytesIn(dir: string): number {
  const stats = statfsSync(dir);
  return Number(stats.bavail) * Number(stats.bsize);
}
