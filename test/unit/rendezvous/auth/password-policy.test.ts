import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import { PASSWORD_LIMITS, validateNewPassword } from '../../../../rendezvous/auth/password-policy.js';

function rejection(password: string): SalaError | undefined {
  try {
    validateNewPassword(password);
  } catch (err) {
    if (err instanceof SalaError) return err;
    throw err;
  }
  return undefined;
}

describe('validateNewPassword', () => {
  it('accepts 8 characters and rejects 7 with SALA_E_PASSWORD_REJECTED', () => {
    expect(rejection('abcdefgh')).toBeUndefined();
    expect(rejection('abcdefg')?.code).toBe('SALA_E_PASSWORD_REJECTED');
    expect(rejection('')?.code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('counts code points, not UTF-16 units', () => {
    expect(rejection('🔑'.repeat(7))?.code).toBe('SALA_E_PASSWORD_REJECTED');
    expect(rejection('🔑'.repeat(8))).toBeUndefined();
  });

  it('counts characters after NFC, so combining accents do not pad the length', () => {
    const decomposed = 'e\u0301'.repeat(4) + 'abc'; // 11 UTF-16 units, 7 characters after NFC
    expect(rejection(decomposed)?.code).toBe('SALA_E_PASSWORD_REJECTED');
    expect(rejection(`${decomposed}d`)).toBeUndefined();
  });

  it('accepts 1,024 UTF-8 bytes and rejects 1,025', () => {
    expect(PASSWORD_LIMITS.maxBytes).toBe(1_024);
    expect(rejection('a'.repeat(1_024))).toBeUndefined();
    expect(rejection('a'.repeat(1_025))?.code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('measures the byte limit in UTF-8, after NFC', () => {
    expect(rejection('\u00e9'.repeat(512))).toBeUndefined(); // 2 bytes each
    expect(rejection('\u00e9'.repeat(513))?.code).toBe('SALA_E_PASSWORD_REJECTED');
    expect(rejection('e\u0301'.repeat(512))).toBeUndefined(); // 3 bytes each before NFC, 2 after
    expect(rejection('€'.repeat(342))?.code).toBe('SALA_E_PASSWORD_REJECTED'); // 1,026 bytes
  });

  it('rejects a megabyte-long password without trouble', () => {
    expect(rejection('x'.repeat(1_000_000))?.code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('rejects an unpaired surrogate, which UTF-8 would turn into U+FFFD', () => {
    expect(rejection('abcdefgh\ud800')?.code).toBe('SALA_E_PASSWORD_REJECTED');
    expect(rejection('abcdefgh\udc00x')?.code).toBe('SALA_E_PASSWORD_REJECTED');
  });

  it('never quotes the password in its message', () => {
    for (const password of ['hunter2', 'hunter2'.repeat(200), 'secretpw\ud800']) {
      const err = rejection(password);
      expect(err).toBeDefined();
      expect(err?.message).not.toContain('hunter2');
      expect(err?.message).not.toContain('secretpw');
    }
  });
});
