import { describe, expect, it } from 'vitest';
import { SalaError } from '../../../../common/errors.js';
import {
  AUTH_LIMITS,
  ConnectionCounter,
  KeyedTokenBucket,
  LoginThrottle,
  type LimitResult,
} from '../../../../rendezvous/auth/rate-limiter.js';

const T0 = 1_700_000_000_000;

function retryAfter(result: LimitResult): number {
  if (result.isAllowed) throw new Error('expected a refusal');
  return result.retryAfterMs;
}

function configError(make: () => unknown): SalaError {
  try {
    make();
  } catch (err) {
    if (err instanceof SalaError) return err;
    throw err;
  }
  throw new Error('expected SALA_E_CONFIG_INVALID');
}

describe('AUTH_LIMITS', () => {
  it('is frozen all the way down', () => {
    expect(Object.isFrozen(AUTH_LIMITS)).toBe(true);
    expect(Object.isFrozen(AUTH_LIMITS.perIp)).toBe(true);
    expect(Object.isFrozen(AUTH_LIMITS.perUserIp)).toBe(true);
    expect(Object.isFrozen(AUTH_LIMITS.backoff)).toBe(true);
  });

  it('caps the per-user backoff at 30 s', () => {
    expect(AUTH_LIMITS.backoff.maxMs).toBe(30_000);
  });
});

describe('KeyedTokenBucket', () => {
  it('allows a burst of capacity, then refuses', () => {
    const bucket = new KeyedTokenBucket({ capacity: 3, refillPerSecond: 1, maxKeys: 10 });
    for (let i = 0; i < 3; i += 1) expect(bucket.take('a', T0).isAllowed).toBe(true);
    expect(bucket.take('a', T0).isAllowed).toBe(false);
  });

  it('keeps keys apart', () => {
    const bucket = new KeyedTokenBucket({ capacity: 1, refillPerSecond: 1, maxKeys: 10 });
    expect(bucket.take('a', T0).isAllowed).toBe(true);
    expect(bucket.take('a', T0).isAllowed).toBe(false);
    expect(bucket.take('b', T0).isAllowed).toBe(true);
  });

  it('refills at refillPerSecond, never beyond capacity', () => {
    const bucket = new KeyedTokenBucket({ capacity: 2, refillPerSecond: 0.5, maxKeys: 10 });
    bucket.take('a', T0);
    bucket.take('a', T0);
    expect(bucket.take('a', T0 + 1_999).isAllowed).toBe(false);
    expect(bucket.take('a', T0 + 2_000).isAllowed).toBe(true);
    // An hour idle refills to 2, not 1,800.
    const later = T0 + 3_600_000;
    expect(bucket.take('a', later).isAllowed).toBe(true);
    expect(bucket.take('a', later).isAllowed).toBe(true);
    expect(bucket.take('a', later).isAllowed).toBe(false);
  });

  it('says exactly how long until the next token with retryAfterMs', () => {
    const bucket = new KeyedTokenBucket({ capacity: 5, refillPerSecond: 5 / 60, maxKeys: 10 });
    for (let i = 0; i < 5; i += 1) bucket.take('a', T0);
    const wait = retryAfter(bucket.take('a', T0));
    expect(wait).toBe(12_000);
    expect(retryAfter(bucket.take('a', T0 + wait - 1))).toBe(1);
    expect(bucket.take('a', T0 + wait).isAllowed).toBe(true);
  });

  it('gives a retryAfterMs that always suffices, for fractional refill rates', () => {
    const bucket = new KeyedTokenBucket({ capacity: 1, refillPerSecond: 1 / 7, maxKeys: 10 });
    let now = T0;
    bucket.take('a', now);
    for (let i = 0; i < 50; i += 1) {
      now += 1 + (i * 37) % 1_000;
      const result = bucket.take('a', now);
      if (!result.isAllowed) {
        expect(result.retryAfterMs).toBeGreaterThanOrEqual(1);
        now += result.retryAfterMs;
        expect(bucket.take('a', now).isAllowed).toBe(true);
      }
    }
  });

  it('refills nothing when the clock steps back', () => {
    const bucket = new KeyedTokenBucket({ capacity: 1, refillPerSecond: 1, maxKeys: 10 });
    bucket.take('a', T0);
    expect(bucket.take('a', T0 - 60_000).isAllowed).toBe(false);
    expect(bucket.take('a', T0 + 1_000).isAllowed).toBe(true);
  });

  it('holds at most maxKeys keys under 100,000 distinct keys', () => {
    const bucket = new KeyedTokenBucket({ capacity: 5, refillPerSecond: 1 / 60, maxKeys: 1_000 });
    let largest = 0;
    for (let i = 0; i < 100_000; i += 1) {
      bucket.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, T0 + i);
      largest = Math.max(largest, bucket.size);
    }
    expect(largest).toBe(1_000);
  });

  it('keeps limiting an active key while 100,000 other keys pass through', () => {
    const bucket = new KeyedTokenBucket({ capacity: 2, refillPerSecond: 1 / 3_600, maxKeys: 1_000 });
    bucket.take('attacker', T0);
    bucket.take('attacker', T0);
    let allowed = 0;
    for (let i = 0; i < 100_000; i += 1) {
      bucket.take(`key ${i}`, T0);
      if (i % 100 === 0 && bucket.take('attacker', T0).isAllowed) allowed += 1;
    }
    expect(allowed).toBe(0);
  });

  it('evicts full buckets before partly spent ones', () => {
    const bucket = new KeyedTokenBucket({ capacity: 2, refillPerSecond: 1, maxKeys: 10 });
    bucket.take('spent', T0);
    bucket.take('spent', T0);
    for (let i = 0; i < 9; i += 1) bucket.take(`idle ${i}`, T0);
    // By T0 + 1 s the idle buckets (one token spent) are full again; "spent" still lacks one.
    bucket.take('newcomer', T0 + 1_000);
    expect(bucket.size).toBeLessThanOrEqual(10);
    expect(bucket.take('spent', T0 + 1_000).isAllowed).toBe(true);
    expect(bucket.take('spent', T0 + 1_000).isAllowed).toBe(false);
  });

  it('names a bad option with SALA_E_CONFIG_INVALID', () => {
    const cases: [() => unknown, string][] = [
      [() => new KeyedTokenBucket({ capacity: 0, refillPerSecond: 1, maxKeys: 1 }), 'capacity'],
      [() => new KeyedTokenBucket({ capacity: 0.5, refillPerSecond: 1, maxKeys: 1 }), 'capacity'],
      [() => new KeyedTokenBucket({ capacity: 1, refillPerSecond: Number.NaN, maxKeys: 1 }), 'refillPerSecond'],
      [() => new KeyedTokenBucket({ capacity: 1, refillPerSecond: 1, maxKeys: 0 }), 'maxKeys'],
    ];
    for (const [make, name] of cases) {
      const err = configError(make);
      expect(err.code).toBe('SALA_E_CONFIG_INVALID');
      expect(err.message).toContain(`"${name}"`);
    }
  });
});

describe('ConnectionCounter', () => {
  it('caps open connections per IP and frees a slot on close', () => {
    const counter = new ConnectionCounter({ maxPerIp: 2 });
    expect(counter.tryOpen('10.0.0.1')).toBe(true);
    expect(counter.tryOpen('10.0.0.1')).toBe(true);
    expect(counter.tryOpen('10.0.0.1')).toBe(false);
    expect(counter.tryOpen('10.0.0.2')).toBe(true);
    counter.close('10.0.0.1');
    expect(counter.tryOpen('10.0.0.1')).toBe(true);
  });

  it('defaults to 20 connections per IP', () => {
    const counter = new ConnectionCounter();
    let opened = 0;
    while (counter.tryOpen('10.0.0.1') && opened < 1_000) opened += 1;
    expect(opened).toBe(AUTH_LIMITS.connectionsPerIp);
    expect(opened).toBe(20);
  });

  it('takes the per-IP cap as a bare number too', () => {
    const counter = new ConnectionCounter(1);
    expect(counter.tryOpen('10.0.0.1')).toBe(true);
    expect(counter.tryOpen('10.0.0.1')).toBe(false);
  });

  it('caps the total across IPs', () => {
    const counter = new ConnectionCounter({ maxPerIp: 5, maxTotal: 3 });
    expect(['a', 'b', 'c', 'd'].map((ip) => counter.tryOpen(ip))).toEqual([true, true, true, false]);
    expect(counter.total).toBe(3);
  });

  it('ignores a close without an open and forgets IPs with nothing open', () => {
    const counter = new ConnectionCounter({ maxPerIp: 1, maxTotal: 1 });
    counter.close('10.0.0.9');
    expect(counter.total).toBe(0);
    expect(counter.tryOpen('10.0.0.1')).toBe(true);
    counter.close('10.0.0.1');
    counter.close('10.0.0.1');
    expect(counter.count('10.0.0.1')).toBe(0);
    expect(counter.total).toBe(0);
    expect(counter.tryOpen('10.0.0.2')).toBe(true);
  });

  it('names a bad option with SALA_E_CONFIG_INVALID', () => {
    expect(configError(() => new ConnectionCounter({ maxPerIp: 0 })).message).toContain('"maxPerIp"');
    expect(configError(() => new ConnectionCounter({ maxTotal: 1.5 })).message).toContain('"maxTotal"');
  });
});

describe('LoginThrottle', () => {
  /** Plays a login attempt: check first, and only if allowed "hash" (count) and record a failure. */
  function attempt(throttle: LoginThrottle, user: string, ip: string, nowMs: number, counter: { hashed: number }): LimitResult {
    const result = throttle.check(user, ip, nowMs);
    if (result.isAllowed) {
      counter.hashed += 1;
      throttle.recordFailure(user, ip, nowMs);
    }
    return result;
  }

  it('lets only a handful of 200 bad logins from one IP reach the hasher, and others still log in', () => {
    const throttle = new LoginThrottle();
    const counter = { hashed: 0 };
    // 200 wrong passwords for alice from one host over 60 s, one every 300 ms.
    for (let i = 0; i < 200; i += 1) attempt(throttle, 'alice', '10.0.0.66', T0 + i * 300, counter);
    expect(counter.hashed).toBeGreaterThan(0);
    expect(counter.hashed).toBeLessThanOrEqual(AUTH_LIMITS.perUserIp.capacity + 5);
    const end = T0 + 200 * 300;
    expect(throttle.check('bob', '10.0.0.7', end).isAllowed).toBe(true);
    expect(throttle.check('alice', '10.0.0.66', end).isAllowed).toBe(false);
  });

  it('holds a host spraying 200 user names to its per-IP budget', () => {
    const throttle = new LoginThrottle();
    const counter = { hashed: 0 };
    for (let i = 0; i < 200; i += 1) attempt(throttle, `user${i}`, '10.0.0.66', T0 + i * 300, counter);
    // A burst of 10, then 20 a minute over the 60 s of the attack.
    expect(counter.hashed).toBeLessThanOrEqual(10 + 20);
    expect(throttle.check('bob', '10.0.0.7', T0 + 60_000).isAllowed).toBe(true);
  });

  it('refuses before any hashing once a host floods at one instant, with a retryAfterMs', () => {
    const throttle = new LoginThrottle();
    const counter = { hashed: 0 };
    const results = Array.from({ length: 200 }, (_, i) => attempt(throttle, `user${i % 3}`, '10.0.0.66', T0, counter));
    expect(counter.hashed).toBeLessThanOrEqual(AUTH_LIMITS.perIp.capacity);
    const refused = results.filter((r) => !r.isAllowed);
    expect(refused.length).toBeGreaterThanOrEqual(190);
    for (const r of refused) expect(retryAfter(r)).toBeGreaterThan(0);
  });

  it('backs a user off exponentially after the free failures', () => {
    const throttle = new LoginThrottle({ backoff: { freeFailures: 2, baseMs: 1_000 } });
    const ip = '10.0.0.5';
    throttle.recordFailure('alice', ip, T0);
    throttle.recordFailure('alice', ip, T0);
    expect(throttle.check('alice', ip, T0).isAllowed).toBe(true);
    throttle.recordFailure('alice', ip, T0);
    expect(retryAfter(throttle.check('alice', ip, T0))).toBe(1_000);
    throttle.recordFailure('alice', ip, T0);
    expect(retryAfter(throttle.check('alice', ip, T0))).toBe(2_000);
    throttle.recordFailure('alice', ip, T0);
    expect(retryAfter(throttle.check('alice', ip, T0 + 1_000))).toBe(3_000);
  });

  it('never backs a user off for more than 30 s, however many failures', () => {
    const throttle = new LoginThrottle();
    for (let i = 0; i < 1_000; i += 1) throttle.recordFailure('alice', '10.0.0.66', T0);
    expect(retryAfter(throttle.check('alice', '10.0.0.8', T0))).toBe(30_000);
    expect(throttle.check('alice', '10.0.0.8', T0 + 30_000).isAllowed).toBe(true);
  });

  it('keeps the owner in from a known IP while an attacker keeps renewing the backoff', () => {
    const throttle = new LoginThrottle();
    throttle.check('alice', '10.0.0.8', T0);
    throttle.recordSuccess('alice', '10.0.0.8');
    // One guess every 30 s from another host: within both buckets, renewing the 30 s backoff.
    for (let i = 0; i < 20; i += 1) {
      const now = T0 + i * 30_000;
      if (throttle.check('alice', '10.0.0.66', now).isAllowed) throttle.recordFailure('alice', '10.0.0.66', now);
    }
    const now = T0 + 19 * 30_000 + 1;
    expect(throttle.check('alice', '10.0.0.8', now).isAllowed).toBe(true);
    expect(retryAfter(throttle.check('alice', '10.0.0.9', now))).toBeLessThanOrEqual(30_000);
  });

  it('clears the backoff after a successful login', () => {
    const throttle = new LoginThrottle();
    for (let i = 0; i < 10; i += 1) throttle.recordFailure('alice', '10.0.0.66', T0);
    throttle.recordSuccess('alice', '10.0.0.8');
    expect(throttle.check('alice', '10.0.0.9', T0).isAllowed).toBe(true);
  });

  it('restarts the failure count after resetAfterMs without failures', () => {
    const throttle = new LoginThrottle({ backoff: { freeFailures: 1, resetAfterMs: 60_000 } });
    throttle.recordFailure('alice', '10.0.0.66', T0);
    throttle.recordFailure('alice', '10.0.0.66', T0);
    expect(retryAfter(throttle.check('alice', '10.0.0.66', T0))).toBe(1_000);
    throttle.recordFailure('alice', '10.0.0.66', T0 + 60_001);
    expect(throttle.check('alice', '10.0.0.66', T0 + 60_001).isAllowed).toBe(true);
  });

  it('limits one user from one IP with its own bucket, apart from other users', () => {
    const throttle = new LoginThrottle({ backoff: { freeFailures: 1_000 } });
    for (let i = 0; i < 5; i += 1) expect(throttle.check('alice', '10.0.0.5', T0).isAllowed).toBe(true);
    expect(retryAfter(throttle.check('alice', '10.0.0.5', T0))).toBe(12_000);
    expect(throttle.check('bob', '10.0.0.5', T0).isAllowed).toBe(true);
    expect(throttle.check('alice', '10.0.0.6', T0).isAllowed).toBe(true);
  });

  it('keeps (user, IP) keys unambiguous', () => {
    const throttle = new LoginThrottle({ backoff: { freeFailures: 1_000 } });
    for (let i = 0; i < 5; i += 1) throttle.check('1alice', '10.0.0.5', T0);
    expect(throttle.check('alice', '10.0.0.51', T0).isAllowed).toBe(true);
  });

  it('names a bad backoff option with SALA_E_CONFIG_INVALID', () => {
    expect(configError(() => new LoginThrottle({ backoff: { maxMs: 0 } })).message).toContain('"backoff.maxMs"');
    expect(configError(() => new LoginThrottle({ backoff: { freeFailures: -1 } })).message).toContain('"backoff.freeFailures"');
  });
});
