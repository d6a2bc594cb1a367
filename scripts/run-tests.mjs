#!/usr/bin/env node
// Runs the vitest suite, inside a private network namespace when the OS allows it.
//
//   node scripts/run-tests.mjs [vitest args...]      (what `npm test -- [args]` runs)
//
// On Linux the runner re-runs itself under `unshare -rnm --propagation private`: a user namespace
// (so no real root is needed), a network namespace holding only `lo`, and a mount namespace with a
// private tmpfs on /run so `ip netns add` in tests creates nothing on the machine itself. Inside, it
// brings `lo` up with multicast and a 224.0.0.0/4 route, sets SALA_TEST_NETNS=1 and starts vitest.
// No test can then reach the machine's real interfaces: multicast and mDNS stay in the namespace.
// Where unshare is missing or refused (macOS, Windows, locked-down Linux) vitest runs directly
// without SALA_TEST_NETNS, and test/harness/netns.ts skips (or, on Linux CI, fails) the LAN tests.
//
// The last line printed is always `N passed, N failed[, N skipped]`, read from vitest's JSON report.
// The exit code is vitest's, and non-zero whenever the report is missing or shows a failure.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SCRIPT), '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const UNSHARE_ARGS = ['-rnm', '--propagation', 'private'];
// Private to this script: which stage a re-run is, and where vitest writes its JSON report.
const STAGE_ENV = 'SALA_TEST_RUNNER_STAGE';
const REPORT_ENV = 'SALA_TEST_RUNNER_REPORT';
const PROBE_TIMEOUT_MS = 15_000;

const stage = process.env[STAGE_ENV];
if (stage === 'probe') {
  process.exitCode = setUpNamespace() ? 0 : 1;
} else if (stage === 'inner') {
  process.exitCode = await runInner();
} else {
  process.exitCode = await runOuter(process.argv.slice(2));
}

/** Outer stage: choose namespace or not, run vitest, print the summary line. */
async function runOuter(vitestArgs) {
  const reportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sala-vitest-'));
  const reportPath = path.join(reportDir, 'results.json');
  const env = { ...process.env };
  // Only this runner may claim a namespace; an inherited value would let LAN tests run on real links.
  delete env.SALA_TEST_NETNS;
  delete env[STAGE_ENV];
  delete env[REPORT_ENV];

  let exitCode;
  try {
    const probe = probeNamespace();
    if (probe.isUsable) {
      exitCode = await runChild('unshare', [...UNSHARE_ARGS, process.execPath, SCRIPT, ...vitestArgs], {
        ...env,
        [STAGE_ENV]: 'inner',
        [REPORT_ENV]: reportPath,
      });
    } else {
      process.stderr.write(
        `run-tests: running without a private network namespace (${probe.reason}); ` +
          'LAN tests will be skipped, or fail under CI=true on Linux.\n',
      );
      exitCode = await runChild(process.execPath, vitestCommand(vitestArgs, reportPath), env);
    }
    return summarize(reportPath, exitCode);
  } finally {
    fs.rmSync(reportDir, { recursive: true, force: true });
  }
}

/** Inner stage: already inside the fresh namespaces; set them up and start vitest. */
async function runInner() {
  const reportPath = process.env[REPORT_ENV];
  if (reportPath === undefined || reportPath === '') {
    process.stderr.write(`run-tests: ${REPORT_ENV} is not set; run scripts/run-tests.mjs directly.\n`);
    return 1;
  }
  if (!setUpNamespace()) return 1;
  const env = { ...process.env, SALA_TEST_NETNS: '1' };
  delete env[STAGE_ENV];
  delete env[REPORT_ENV];
  return runChild(process.execPath, vitestCommand(process.argv.slice(2), reportPath), env);
}

/**
 * Decides whether the namespace route works by running the real setup in a throwaway namespace,
 * so a kernel that allows unshare but refuses the tmpfs mount or a route falls back cleanly.
 */
function probeNamespace() {
  if (process.platform !== 'linux') return { isUsable: false, reason: `not Linux (${process.platform})` };
  const probe = spawnSync('unshare', [...UNSHARE_ARGS, process.execPath, SCRIPT], {
    env: { ...process.env, [STAGE_ENV]: 'probe' },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
  });
  if (probe.error !== undefined) return { isUsable: false, reason: `unshare failed: ${probe.error.message}` };
  if (probe.status !== 0) {
    const detail = probe.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${String(probe.status)}`;
    return { isUsable: false, reason: `unshare -rnm refused: ${detail}` };
  }
  return { isUsable: true, reason: '' };
}

/** Runs inside the new namespaces; returns false (after saying why on stderr) on any failure. */
function setUpNamespace() {
  const steps = [
    // A private /run: `ip netns add` keeps its bind mounts in /run/netns.
    ['mount', ['-t', 'tmpfs', 'tmpfs', '/run']],
    ['ip', ['link', 'set', 'lo', 'up']],
    ['ip', ['link', 'set', 'lo', 'multicast', 'on']],
    // Lets single-process multicast tests send on lo without a default route.
    ['ip', ['route', 'add', '224.0.0.0/4', 'dev', 'lo']],
  ];
  for (const [command, args] of steps) {
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (result.error !== undefined || result.status !== 0) {
      const detail = result.error?.message ?? result.stderr.trim();
      process.stderr.write(`run-tests: namespace setup failed at \`${command} ${args.join(' ')}\`: ${detail}\n`);
      return false;
    }
  }
  return true;
}

function vitestCommand(userArgs, reportPath) {
  const hasOwnReporter = userArgs.some((arg) => arg === '--reporter' || arg.startsWith('--reporter='));
  return [
    VITEST,
    'run',
    ...(hasOwnReporter ? [] : ['--reporter=default']),
    '--reporter=json',
    `--outputFile.json=${reportPath}`,
    ...userArgs,
  ];
}

/** Spawns without a shell (Windows-safe), forwards termination signals, resolves to an exit code. */
function runChild(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'inherit' });
    const forward = (signal) => {
      child.kill(signal);
    };
    const signals = process.platform === 'win32' ? ['SIGINT'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const signal of signals) process.on(signal, forward);
    const finish = (code) => {
      for (const signal of signals) process.off(signal, forward);
      resolve(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`run-tests: could not start ${command}: ${err.message}\n`);
      finish(1);
    });
    child.once('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (os.constants.signals[signal] ?? 0));
    });
  });
}

/** Prints the final summary line and returns the exit code to use. */
function summarize(reportPath, vitestExitCode) {
  let report;
  try {
    report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
  } catch (err) {
    process.stderr.write(`run-tests: no vitest JSON report (${err.message}); counting the run as failed.\n`);
    process.stdout.write('0 passed, 1 failed\n');
    return vitestExitCode === 0 ? 1 : vitestExitCode;
  }
  const passed = count(report.numPassedTests);
  const skipped = count(report.numPendingTests) + count(report.numTodoTests);
  // A file that fails outside any test (import error, failing beforeAll) has no failed test of its
  // own; count it once so the summary never reads "0 failed" for a failing run.
  const files = Array.isArray(report.testResults) ? report.testResults : [];
  const failedOutsideTests = files.filter(
    (file) =>
      file?.status === 'failed' &&
      !(Array.isArray(file.assertionResults) && file.assertionResults.some((t) => t?.status === 'failed')),
  ).length;
  let failed = count(report.numFailedTests) + failedOutsideTests;
  if (failed === 0 && vitestExitCode !== 0) {
    // Unhandled errors, no matching files, a crashed worker: failures the report cannot attribute.
    process.stderr.write(`run-tests: vitest exited with ${vitestExitCode} outside any test; see above.\n`);
    failed = 1;
  }
  process.stdout.write(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  if (vitestExitCode !== 0) return vitestExitCode;
  return failed > 0 || report.success === false ? 1 : 0;
}

function count(value) {
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}
