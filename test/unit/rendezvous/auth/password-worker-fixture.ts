/**
 * Compiles rendezvous/auth/password-worker.ts for the tests. A worker thread cannot load
 * TypeScript, and dist/ may be missing or older than the source under `npx vitest`, so the tests
 * transpile the (self-contained) worker themselves into node_modules/.cache, where the bare
 * `libsodium-wrappers-sumo` import still resolves. The file name carries a hash of the output, so a
 * stale copy is never used and parallel test files never race on one file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SOURCE = new URL('../../../../rendezvous/auth/password-worker.ts', import.meta.url);
const CACHE_DIR = new URL('../../../../node_modules/.cache/sala-test/', import.meta.url);

let cached: URL | undefined;

export function passwordWorkerUrl(): URL {
  if (cached !== undefined) return cached;
  const { outputText } = ts.transpileModule(readFileSync(SOURCE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  });
  const digest = createHash('sha256').update(outputText).digest('hex').slice(0, 16);
  const url = new URL(`password-worker-${digest}.mjs`, CACHE_DIR);
  if (!existsSync(url)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    const temporary = `${fileURLToPath(url)}.${process.pid}.tmp`;
    writeFileSync(temporary, outputText);
    renameSync(temporary, url);
  }
  cached = url;
  return url;
}
