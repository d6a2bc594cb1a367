import { expect } from 'vitest';
import { SalaError, type SalaErrorCode } from '../../common/errors.js';

/** Runs `fn`, expecting it to throw a SalaError with `code`; returns the error for more checks. */
export function catchSalaError(fn: () => unknown, code: SalaErrorCode): SalaError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SalaError);
  expect((caught as SalaError).code).toBe(code);
  return caught as SalaError;
}

/** Awaits `promise`, expecting it to reject with a SalaError (with `code`, when given). */
export async function rejectsWithSalaError(promise: Promise<unknown>, code?: SalaErrorCode): Promise<SalaError> {
  const outcome = await promise.then(
    () => new Error('expected a rejection with a SalaError, got success'),
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(SalaError);
  if (code !== undefined) expect((outcome as SalaError).code).toBe(code);
  return outcome as SalaError;
}
