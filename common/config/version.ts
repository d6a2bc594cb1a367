import { readFileSync } from 'node:fs';

/**
 * The package version, read from package.json at the repository root. This file runs from source
 * (common/config) under vitest and from dist/common/config when built, so both depths are tried.
 */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (parsed.name === 'sala' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // try the next depth
    }
  }
  return '0.0.0';
}
