/**
 * Login rate limits that run before any password is hashed (SECURITY.md H1).
 *
 * - KeyedTokenBucket: one token bucket per key, in bounded memory.
 * - ConnectionCounter: a cap on open connections per IP (and in total).
 * - LoginThrottle: buckets per IP and per (user, IP), plus a per-user backoff after failures that
 *   never exceeds 30 s, so guessing is slow but nobody can be locked out for long.
 *
 * Every method takes the current time (`nowMs`) so tests drive a fake clock; nothing here sets a
 * timer, so nothing needs closing.
 */
import { ConfigInvalidError } from '../../common/index.js';

/**
 * The defaults, sized for a classroom LAN (tens of hosts, one login per person per session).
 * Belongs in common/config/defaults.ts; kept here until that file can take it.
 */
export const AUTH_LIMITS = Object.freeze({
  /** Login attempts per source IP: a burst of 10, then 20 a minute (one every 3 s). */
  perIp: Object.freeze({ capacity: 10, refillPerSecond: 20 / 60, maxKeys: 10_000 }),
  /** Attempts at one user from one IP: a burst of 5, then 5 a minute. */
  perUserIp: Object.freeze({ capacity: 5, refillPerSecond: 5 / 60, maxKeys: 20_000 }),
  /** Open connections (handshaking or logged in) per source IP. The server-wide cap is its own. */
  connectionsPerIp: 20,
  /**
   * Per-user backoff: the first `freeFailures` failures cost nothing more, then each one blocks the
   * user for baseMs, 2×, 4×… up to maxMs (30 s: SECURITY.md H1, nobody locked out for longer).
   * The count restarts after `resetAfterMs` without a failure. IPs the user last logged in from
   * (`knownIpsPerUser`) are exempt, so an attacker elsewhere cannot keep the owner out.
   */
  backoff: Object.freeze({
    freeFailures: 3,
    baseMs: 1_000,
    maxMs: 30_000,
    resetAfterMs: 15 * 60_000,
    maxUsers: 10_000,
    knownIpsPerUser: 4,
  }),
});

export type LimitResult = { isAllowed: true } | { isAllowed: false; retryAfterMs: number };

const ALLOWED: LimitResult = Object.freeze({ isAllowed: true });

/** Floating-point slack when a refilled bucket should hold exactly one token. */
const TOKEN_EPSILON = 1e-9;

/**
 * Keys longer than this are cut (IPv6 with a zone id is under 64; user names are at most 32), so a
 * peer cannot make a key cost us kilobytes. Over-long inputs that collide only share a bucket.
 */
const MAX_KEY_PART_CHARS = 64;

function positiveNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigInvalidError(name, 'must be a positive number');
  return value;
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new ConfigInvalidError(name, 'must be a positive integer');
  return value;
}

function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ConfigInvalidError(name, 'must be an integer of 0 or more');
  return value;
}

export interface TokenBucketOptions {
  /** Tokens a full bucket holds: the burst allowed after a quiet period. */
  capacity: number;
  /** Tokens added per second, up to capacity. */
  refillPerSecond: number;
  /** Most keys held at once. */
  maxKeys: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * A token bucket per key (an IP, a user and IP…). take() spends one token or says how long until
 * one is back.
 *
 * Memory: at most maxKeys buckets, kept in a Map ordered by last use. When a new key would exceed
 * maxKeys, full buckets are dropped first (a full bucket is indistinguishable from a new one, so
 * nothing is lost), then the least recently used, until 90% of maxKeys remain. A sweep is O(keys)
 * but frees at least a tenth of them, so take() stays O(1) amortised. Eviction only ever forgets a
 * partly spent bucket, which makes the limit looser for that key, never stricter; a key being
 * actively limited stays most recently used and is evicted last.
 */
export class KeyedTokenBucket {
  readonly #capacity: number;
  readonly #refillPerMs: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: TokenBucketOptions) {
    this.#capacity = positiveNumber(options.capacity, 'capacity');
    if (this.#capacity < 1) throw new ConfigInvalidError('capacity', 'must be at least 1');
    this.#refillPerMs = positiveNumber(options.refillPerSecond, 'refillPerSecond') / 1_000;
    this.#maxKeys = positiveInteger(options.maxKeys, 'maxKeys');
  }

  /** Keys currently held (at most maxKeys). */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, nowMs: number = Date.now()): LimitResult {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#evict(nowMs);
      bucket = { tokens: this.#capacity, updatedMs: nowMs };
    } else {
      this.#buckets.delete(key);
      this.#refill(bucket, nowMs);
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1 - TOKEN_EPSILON) {
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      return ALLOWED;
    }
    return { isAllowed: false, retryAfterMs: Math.max(1, Math.ceil((1 - bucket.tokens) / this.#refillPerMs)) };
  }

  /** Forgets a key (its next take() starts from a full bucket). */
  delete(key: string): void {
    this.#buckets.delete(key);
  }

  /** A clock that steps back (NTP, a VM resumed) refills nothing rather than going negative. */
  #refill(bucket: Bucket, nowMs: number): void {
    if (nowMs <= bucket.updatedMs) return;
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + (nowMs - bucket.updatedMs) * this.#refillPerMs);
    bucket.updatedMs = nowMs;
  }

  #isFull(bucket: Bucket, nowMs: number): boolean {
    const elapsedMs = Math.max(0, nowMs - bucket.updatedMs);
    return bucket.tokens + elapsedMs * this.#refillPerMs >= this.#capacity - TOKEN_EPSILON;
  }

  #evict(nowMs: number): void {
    const target = Math.min(this.#maxKeys - 1, Math.floor(this.#maxKeys * 0.9));
    for (const [key, bucket] of this.#buckets) {
      if (this.#isFull(bucket, nowMs)) this.#buckets.delete(key);
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= target) break;
      this.#buckets.delete(key);
    }
  }
}

export interface ConnectionCounterOptions {
  /** Open connections allowed per IP (default AUTH_LIMITS.connectionsPerIp). */
  maxPerIp?: number;
  /** Open connections allowed in total (default: no cap here; the server applies its own). */
  maxTotal?: number;
}

/**
 * Counts open connections per IP so one host cannot hold every handshake slot. Only IPs with an
 * open connection are kept, so memory is bounded by the open connections (by maxTotal, or by the
 * server's own connection cap). Call close(ip) exactly once for each tryOpen(ip) that returned true.
 */
export class ConnectionCounter {
  readonly #maxPerIp: number;
  readonly #maxTotal: number;
  readonly #open = new Map<string, number>();
  #total = 0;

  /** `new ConnectionCounter(5)` is short for `new ConnectionCounter({ maxPerIp: 5 })`. */
  constructor(options: ConnectionCounterOptions | number = {}) {
    if (typeof options === 'number') options = { maxPerIp: options };
    this.#maxPerIp = positiveInteger(options.maxPerIp ?? AUTH_LIMITS.connectionsPerIp, 'maxPerIp');
    this.#maxTotal = options.maxTotal === undefined ? Number.POSITIVE_INFINITY : positiveInteger(options.maxTotal, 'maxTotal');
  }

  /** Counts a new connection from `ip` and returns true, or returns false if a cap is reached. */
  tryOpen(ip: string): boolean {
    const count = this.#open.get(ip) ?? 0;
    if (count >= this.#maxPerIp || this.#total >= this.#maxTotal) return false;
    this.#open.set(ip, count + 1);
    this.#total += 1;
    return true;
  }

  /** Uncounts a connection from `ip`; a close without a matching open is ignored. */
  close(ip: string): void {
    const count = this.#open.get(ip);
    if (count === undefined) return;
    if (count <= 1) this.#open.delete(ip);
    else this.#open.set(ip, count - 1);
    this.#total -= 1;
  }

  count(ip: string): number {
    return this.#open.get(ip) ?? 0;
  }

  get total(): number {
    return this.#total;
  }
}

export interface BackoffOptions {
  freeFailures: number;
  baseMs: number;
  maxMs: number;
  resetAfterMs: number;
  maxUsers: number;
  knownIpsPerUser: number;
}

export interface LoginThrottleOptions {
  perIp?: TokenBucketOptions;
  perUserIp?: TokenBucketOptions;
  backoff?: Partial<BackoffOptions>;
}

interface UserState {
  failures: number;
  lastFailureMs: number;
  blockedUntilMs: number;
  /** IPs of the last successful logins, most recent last. */
  knownIps: string[];
}

/**
 * Decides whether a login attempt may go on to the password hasher. The server calls check()
 * before any hashing (a refusal becomes SALA_E_RATE_LIMIT with retryAfterMs), then
 * recordFailure() or recordSuccess() with the outcome.
 *
 * Order in check(): the per-IP bucket first (a flood from one host is refused at the cheapest
 * point, and each refusal still spends that host's tokens), then the user's backoff, then the
 * (user, IP) bucket. A refusal at one stage spends no token at the later ones.
 *
 * The backoff is per user, whatever the IP, to slow guessing from many hosts. Because of that an
 * attacker could renew it every 30 s; the IPs the user last logged in from are therefore exempt
 * (they stay under both buckets). A user on a new IP under attack waits at most 30 s per try.
 */
export class LoginThrottle {
  readonly #perIp: KeyedTokenBucket;
  readonly #perUserIp: KeyedTokenBucket;
  readonly #backoff: BackoffOptions;
  readonly #users = new Map<string, UserState>();

  constructor(options: LoginThrottleOptions = {}) {
    this.#perIp = new KeyedTokenBucket(options.perIp ?? AUTH_LIMITS.perIp);
    this.#perUserIp = new KeyedTokenBucket(options.perUserIp ?? AUTH_LIMITS.perUserIp);
    const b = { ...AUTH_LIMITS.backoff, ...options.backoff };
    this.#backoff = {
      freeFailures: nonNegativeInteger(b.freeFailures, 'backoff.freeFailures'),
      baseMs: positiveInteger(b.baseMs, 'backoff.baseMs'),
      maxMs: positiveInteger(b.maxMs, 'backoff.maxMs'),
      resetAfterMs: positiveInteger(b.resetAfterMs, 'backoff.resetAfterMs'),
      maxUsers: positiveInteger(b.maxUsers, 'backoff.maxUsers'),
      knownIpsPerUser: nonNegativeInteger(b.knownIpsPerUser, 'backoff.knownIpsPerUser'),
    };
  }

  check(user: string, ip: string, nowMs: number = Date.now()): LimitResult {
    const ipKey = ip.slice(0, MAX_KEY_PART_CHARS);
    const userKey = user.slice(0, MAX_KEY_PART_CHARS);
    const byIp = this.#perIp.take(ipKey, nowMs);
    if (!byIp.isAllowed) return byIp;
    const state = this.#users.get(userKey);
    if (state !== undefined && !state.knownIps.includes(ipKey)) {
      const remainingMs = state.blockedUntilMs - nowMs;
      if (remainingMs > 0) return { isAllowed: false, retryAfterMs: Math.min(remainingMs, this.#backoff.maxMs) };
    }
    return this.#perUserIp.take(`${ipKey.length}:${ipKey}${userKey}`, nowMs);
  }

  /** Counts a wrong password. `ip` is unused: the backoff is per user on purpose (see above). */
  recordFailure(user: string, ip: string, nowMs: number = Date.now()): void {
    const state = this.#touch(user.slice(0, MAX_KEY_PART_CHARS));
    if (nowMs - state.lastFailureMs > this.#backoff.resetAfterMs) state.failures = 0;
    state.failures += 1;
    state.lastFailureMs = nowMs;
    const over = state.failures - this.#backoff.freeFailures;
    if (over > 0) {
      // 2 ** 30 already exceeds any sane maxMs; capping the exponent keeps the number finite.
      const delayMs = Math.min(this.#backoff.maxMs, this.#backoff.baseMs * 2 ** Math.min(over - 1, 30));
      state.blockedUntilMs = nowMs + delayMs;
    }
  }

  /** Clears the user's backoff and remembers `ip` as one they log in from. */
  recordSuccess(user: string, ip: string): void {
    const state = this.#touch(user.slice(0, MAX_KEY_PART_CHARS));
    state.failures = 0;
    state.blockedUntilMs = 0;
    const ipKey = ip.slice(0, MAX_KEY_PART_CHARS);
    state.knownIps = state.knownIps.filter((known) => known !== ipKey);
    state.knownIps.push(ipKey);
    while (state.knownIps.length > this.#backoff.knownIpsPerUser) state.knownIps.shift();
  }

  /** The user's state, now most recently used; the least recently used user is forgotten past maxUsers. */
  #touch(userKey: string): UserState {
    let state = this.#users.get(userKey);
    if (state === undefined) {
      state = { failures: 0, lastFailureMs: Number.NEGATIVE_INFINITY, blockedUntilMs: 0, knownIps: [] };
      if (this.#users.size >= this.#backoff.maxUsers) {
        const oldest = this.#users.keys().next();
        if (oldest.done !== true) this.#users.delete(oldest.value);
      }
    } else {
      this.#users.delete(userKey);
    }
    this.#users.set(userKey, state);
    return state;
  }
}
