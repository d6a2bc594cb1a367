#!/usr/bin/env node
// Rewrites docs/errors.md from the registry in common/errors.ts (run after adding a code:
// `node scripts/errors-doc.mjs`). test/unit/common/errors.test.ts checks the two agree both ways.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = readFileSync(join(root, 'common/errors.ts'), 'utf8');
const body = source.slice(source.indexOf('ERROR_CODES = Object.freeze({'), source.indexOf('} as const);'));
const out = [
  '# Error codes',
  '',
  'Every error Sala reports carries one of these stable codes (`code` in JSON events and in',
  '`SalaError`). Scripts branch on the code, never on the message. Codes are never renamed or reused;',
  '`test/unit/common/errors.test.ts` fails unless this table and `common/errors.ts` list the same codes.',
  'This file is generated from `common/errors.ts` by `node scripts/errors-doc.mjs`.',
];
for (const line of body.split('\n')) {
  const section = /^\s*\/\/ (.*)$/.exec(line);
  if (section) {
    const title = section[1];
    out.push('', `## ${title[0].toUpperCase()}${title.slice(1)}`, '', '| code | meaning |', '|---|---|');
    continue;
  }
  const entry = /^\s*(SALA_E_[A-Z0-9_]+): '(.*)',$/.exec(line);
  if (entry) out.push(`| \`${entry[1]}\` | ${entry[2].replace(/\\'/g, "'")} |`);
}
writeFileSync(join(root, 'docs/errors.md'), `${out.join('\n')}\n`);
