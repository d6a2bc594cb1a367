/**
 * Child program for LAN tests of findServers, run inside a host's namespace with
 *   node dist/test/harness/server-finder-probe.js <interfaceAddress> <timeoutMs> <settleMs> [wantedFingerprint]
 * Runs findServers once, pinned to <interfaceAddress>; with [wantedFingerprint], isWanted accepts
 * only answers carrying that fingerprint. Prints JSON lines:
 *   → finder.started {}
 *   → finder.considered { candidate, isWanted } each time isWanted is asked (only with a fingerprint)
 *   → finder.done { candidates, elapsedMs } or finder.failed { code, message, elapsedMs }
 * The stdin command {"cmd":"abort"} aborts the search. After the result the probe stops reading
 * stdin and exits by itself, so a probe that does not exit shows a socket or timer left open.
 */
import { createInterface } from 'node:readline';
import { createLogger, isSalaErrorCode, parseFingerprint } from '../../common/index.js';
import { findServers, type ServerCandidate } from '../../peer/discovery/index.js';
import { UsageError, argAt, emit, runProbe } from './probe-io.js';

function millisecondsArg(argv: readonly string[], index: number, name: string): number {
  const text = argAt(argv, index, name);
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`<${name}> must be a non-negative integer, got ${text}`);
  return value;
}

runProbe(async () => {
  const argv = process.argv.slice(2);
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const timeoutMs = millisecondsArg(argv, 1, 'timeoutMs');
  const settleMs = millisecondsArg(argv, 2, 'settleMs');
  const wantedText = argv[3];
  const wanted = wantedText === undefined ? undefined : parseFingerprint(wantedText);

  const controller = new AbortController();
  const commands = createInterface({ input: process.stdin, crlfDelay: Infinity });
  commands.on('line', (line) => {
    if (line.trim() === JSON.stringify({ cmd: 'abort' })) controller.abort();
    else emit('warning', { message: `unknown stdin line ${line.slice(0, 80)}` });
  });
  const stopReading = (): void => {
    commands.close();
    process.stdin.destroy();
  };

  const isWanted =
    wanted === undefined
      ? undefined
      : (candidate: ServerCandidate): boolean => {
          const isMatch = candidate.fingerprint === wanted;
          emit('finder.considered', { candidate: { ...candidate }, isWanted: isMatch });
          return isMatch;
        };

  const startedAt = performance.now();
  const elapsedMs = (): number => Math.round(performance.now() - startedAt);
  const search = findServers({
    interfaceAddress,
    timeoutMs,
    settleMs,
    isWanted,
    signal: controller.signal,
    logger: createLogger({ level: 'debug', name: `finder@${interfaceAddress}` }),
  });
  emit('finder.started', {});
  search.then(
    (candidates) => {
      emit('finder.done', { candidates: candidates.map((c) => ({ ...c })), elapsedMs: elapsedMs() });
      stopReading();
    },
    (err: unknown) => {
      const code = typeof err === 'object' && err !== null && 'code' in err && isSalaErrorCode(err.code) ? err.code : 'UNKNOWN';
      emit('finder.failed', { code, message: err instanceof Error ? err.message : String(err), elapsedMs: elapsedMs() });
      stopReading();
    },
  );
  return async () => {
    controller.abort();
    await search.catch(() => undefined);
  };
});
