import { describe, expect, it } from 'vitest';
import { runNodeScript } from '../helpers/cli.js';

describe('npm run demo', () => {
  it('runs the whole story on loopback and exits 0 with its summary', async () => {
    const result = await runNodeScript('dist/demo/demo.js', [], { timeoutMs: 120_000 });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('Summary');
    expect(result.stdout).toContain('SALA_E_SESSION_LIMIT');
    expect(result.stdout).not.toContain('✘');
  }, 150_000);
});
