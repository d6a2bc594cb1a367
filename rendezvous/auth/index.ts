export {
  PasswordHasher,
  PASSWORD_HASHER_DEFAULTS,
  PASSWORD_HASHER_TEST_HOOKS,
  resolvePasswordWorkerUrl,
  type PasswordHasherOptions,
  type PasswordHasherTestHooks,
} from './password-hasher.js';
export { ARGON2ID_INTERACTIVE, MAX_VERIFY_COST, parseArgon2idHash } from './password-hash-format.js';
export { PASSWORD_LIMITS, validateNewPassword } from './password-policy.js';
export {
  AUTH_LIMITS,
  ConnectionCounter,
  KeyedTokenBucket,
  LoginThrottle,
  type BackoffOptions,
  type ConnectionCounterOptions,
  type LimitResult,
  type LoginThrottleOptions,
  type TokenBucketOptions,
} from './rate-limiter.js';
