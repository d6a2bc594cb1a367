/**
 * Rules for the product code (common/, peer/, rendezvous/, demo/) that the compiler does not check:
 * nothing writes to the console behind the logger's back (stdout is the JSON-lines channel in
 * `--json` mode, and stray debug output is how that breaks), and no `any`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const PRODUCT_DIRS = ['common', 'peer', 'rendezvous'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const files = PRODUCT_DIRS.flatMap((dir) => sourceFiles(join(ROOT, dir)));

function offending(pattern: RegExp): string[] {
  return files.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, i) => (pattern.test(line) && !line.trimStart().startsWith('//') && !line.trimStart().startsWith('*') ? [`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`] : [])),
  );
}

describe('product code', () => {
  it('has source files to check', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it('never calls console.* (output goes through the logger, or the CLI\'s own writers)', () => {
    expect(offending(/\bconsole\.(log|error|warn|info|debug|trace)\(/u)).toEqual([]);
  });

  it('has no `any` type', () => {
    expect(offending(/:\s*any(\[\])?\s*[;,)=|>\]}]|\bas any\b|<any>/u)).toEqual([]);
  });
});
