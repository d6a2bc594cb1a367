import { describe, expect, it } from 'vitest';
import { runNodeScript } from '../helpers/cli.js';

describe('npm run demo', () => {
  it('runs the whole story on loopback and exits 0 with its summary', async () => {
    const result = await runNodeScript('dist/demo/demo.js', [], { timeoutMs: 120_000 });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('Summary');
    expect(result.stdout).toContain('SALA_E_SESSION_LIMIT');
    expect(result.stdout).toContain('#class-7b carol: "Me! Library at 4?"');
    expect(result.stdout).toContain('(reached alice and bob once)');
    expect(result.stdout).not.toContain('✘');
  }, 150_000);
});
