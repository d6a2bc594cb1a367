import { describe, expect, it } from 'vitest';
import { decodeGroupText, encodeGroupText, MAX_GROUP_TEXT_BYTES } from '../../../../peer/groups/group-message.js';
import { TokenBucket, WarningLimiter } from '../../../../peer/groups/rate-limits.js';

describe('group message encoding', () => {
  it('round-trips a text, multi-byte characters included', () => {
    for (const text of ['', 'hello', 'é'.repeat(4_096), '👋 group']) expect(decodeGroupText(encodeGroupText(text))).toBe(text);
  });

  it('refuses a text over 8 KiB of UTF-8 with SALA_E_MESSAGE_TOO_LARGE', () => {
    expect(encodeGroupText('x'.repeat(MAX_GROUP_TEXT_BYTES))).toHaveLength(MAX_GROUP_TEXT_BYTES + 1);
    expect(() => encodeGroupText('x'.repeat(MAX_GROUP_TEXT_BYTES + 1))).toThrow(expect.objectContaining({ code: 'SALA_E_MESSAGE_TOO_LARGE' }));
    expect(() => encodeGroupText('é'.repeat(4_097))).toThrow(expect.objectContaining({ code: 'SALA_E_MESSAGE_TOO_LARGE' }));
  });

  it('rejects an unknown kind, invalid UTF-8 and an oversized text with SALA_E_GROUP_DATAGRAM_INVALID', () => {
    const invalid = expect.objectContaining({ code: 'SALA_E_GROUP_DATAGRAM_INVALID' });
    expect(() => decodeGroupText(new Uint8Array([]))).toThrow(invalid);
    expect(() => decodeGroupText(new Uint8Array([2, 0x41]))).toThrow(invalid);
    expect(() => decodeGroupText(new Uint8Array([1, 0xc3]))).toThrow(invalid);
    expect(() => decodeGroupText(new Uint8Array(MAX_GROUP_TEXT_BYTES + 2).fill(1))).toThrow(invalid);
  });
});

describe('group rate limits', () => {
  it('a token bucket allows its burst, then refills at its rate', () => {
    const bucket = new TokenBucket(4, 10);
    expect(bucket.take(4, 0)).toBe(true);
    expect(bucket.take(1, 0)).toBe(false);
    expect(bucket.waitMs(1, 0)).toBe(100);
    expect(bucket.take(1, 100)).toBe(true);
    expect(bucket.waitMs(5, 100)).toBe(Number.POSITIVE_INFINITY);
  });

  it('a warning limiter lets a few through per window and reports how many it held back', () => {
    const limiter = new WarningLimiter(2, 1_000);
    expect(limiter.admit(0)).toEqual({ suppressedBefore: 0 });
    expect(limiter.admit(1)).toEqual({ suppressedBefore: 0 });
    expect(limiter.admit(2)).toBeUndefined();
    expect(limiter.admit(3)).toBeUndefined();
    expect(limiter.admit(1_000)).toEqual({ suppressedBefore: 2 });
    expect(limiter.suppressedTotal).toBe(2);
  });
});
