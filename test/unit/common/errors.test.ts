import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FrameTooLargeError, isSalaErrorCode, SalaError, toSalaError } from '../../../common/errors.js';

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Set([...docs.matchAll(/^\| `(SALA_E_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));

describe('error codes', () => {
  it('documents every code in docs/errors.md', () => {
    const missing = Object.keys(ERROR_CODES).filter((code) => !documented.has(code));
    expect(missing).toEqual([]);
  });

  it('documents no code that the program does not have', () => {
    const unknown = [...documented].filter((code) => code === undefined || !isSalaErrorCode(code));
    expect(unknown).toEqual([]);
  });

  it('names every code SALA_E_ plus area-first UPPER_SNAKE', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^SALA_E_[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
  });

  it('keeps the code, message and cause on a SalaError', () => {
    const cause = new Error('low level');
    const err = new SalaError('SALA_E_CONFIG_INVALID', 'Option "x" is wrong.', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('SALA_E_CONFIG_INVALID');
    expect(err.name).toBe('SalaError');
    expect(err.cause).toBe(cause);
  });

  it('tells the user the declared and allowed sizes of an oversized frame', () => {
    const err = new FrameTooLargeError(4_294_967_295, 131_072);
    expect(err.code).toBe('SALA_E_FRAME_TOO_LARGE');
    expect(err.message).toContain('4294967295');
    expect(err.message).toContain('131072');
  });

  it('wraps foreign errors with a fallback code and passes SalaErrors through', () => {
    const own = new SalaError('SALA_E_ABORTED', 'stopped');
    expect(toSalaError(own, 'SALA_E_CONNECTION_FAILED', 'x')).toBe(own);
    const wrapped = toSalaError(new TypeError('boom'), 'SALA_E_CONNECTION_FAILED', 'The connection failed.');
    expect(wrapped.code).toBe('SALA_E_CONNECTION_FAILED');
    expect(wrapped.cause).toBeInstanceOf(TypeError);
  });
});
