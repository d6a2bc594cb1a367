import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeUserName, SalaError, type Logger } from '../common/index.js';
import type { PasswordHasher } from './auth/password-hasher.js';
import { validateNewPassword } from './auth/password-policy.js';
import type { UserRecord, UserStore } from './store/store.js';

const AUTH_FAILED_MESSAGE = 'Unknown user or wrong password.';

export function authFailed(): SalaError {
  return new SalaError('SALA_E_AUTH_FAILED', AUTH_FAILED_MESSAGE);
}

/**
 * Accounts: registration, authentication, administration. Passwords are hashed with argon2id in
 * the worker pool, never on the event loop, and never appear in a log line or an error.
 */
export class Accounts {
  readonly #users: UserStore;
  readonly #hasher: PasswordHasher;
  readonly #log: Logger;

  constructor(options: { users: UserStore; hasher: PasswordHasher; logger: Logger }) {
    this.#users = options.users;
    this.#hasher = options.hasher;
    this.#log = options.logger;
  }

  /** Creates an account; throws SALA_E_INVALID_NAME, SALA_E_PASSWORD_REJECTED, SALA_E_USER_EXISTS or SALA_E_BUSY. */
  async register(rawName: string, password: string, nowMs = Date.now()): Promise<UserRecord> {
    const name = normalizeUserName(rawName);
    validateNewPassword(password);
    // Checked before hashing so that a taken name costs no argon2 work; create() re-checks atomically.
    if ((await this.#users.get(name)) !== undefined) throw userExists(name);
    const passwordHash = await this.#hasher.hash(password);
    const at = new Date(nowMs).toISOString();
    const record: UserRecord = { name, passwordHash, isDisabled: false, createdAt: at, passwordChangedAt: at };
    await this.#users.create(record);
    this.#log.info('account.created', { user: name });
    return record;
  }

  /**
   * Checks a login. Unknown user and wrong password give the same error; for an unknown user no
   * hash is computed (argon2 is a CPU lever, SECURITY.md H1) but the answer is delayed by the
   * pool's typical hashing time, so response timing does not tell which case it was. A disabled
   * account is reported only after a correct password.
   */
  async authenticate(rawName: string, password: string): Promise<UserRecord> {
    let name: string;
    try {
      name = normalizeUserName(rawName);
    } catch {
      await sleep(this.#hasher.estimateMs());
      throw authFailed();
    }
    const user = await this.#users.get(name);
    if (user === undefined) {
      await sleep(this.#hasher.estimateMs());
      throw authFailed();
    }
    if (!(await this.#hasher.verify(user.passwordHash, password))) throw authFailed();
    if (user.isDisabled) {
      throw new SalaError('SALA_E_ACCOUNT_DISABLED', `The account "${name}" is disabled; ask the administrator to enable it.`);
    }
    return user;
  }

  async get(rawName: string): Promise<UserRecord | undefined> {
    return this.#users.get(normalizeUserName(rawName));
  }

  async list(): Promise<UserRecord[]> {
    return this.#users.list();
  }

  async setDisabled(rawName: string, isDisabled: boolean): Promise<UserRecord> {
    const name = normalizeUserName(rawName);
    if (!(await this.#users.update(name, { isDisabled }))) throw noSuchUser(name);
    return this.#require(name);
  }

  async changePassword(rawName: string, password: string, nowMs = Date.now()): Promise<UserRecord> {
    const name = normalizeUserName(rawName);
    validateNewPassword(password);
    if ((await this.#users.get(name)) === undefined) throw noSuchUser(name);
    const passwordHash = await this.#hasher.hash(password);
    await this.#users.update(name, { passwordHash, passwordChangedAt: new Date(nowMs).toISOString() });
    return this.#require(name);
  }

  async #require(name: string): Promise<UserRecord> {
    const user = await this.#users.get(name);
    if (user === undefined) throw noSuchUser(name);
    return user;
  }
}

function userExists(name: string): SalaError {
  return new SalaError('SALA_E_USER_EXISTS', `An account named "${name}" already exists; choose another name.`);
}

/** For admin commands only: the administrator may know which accounts exist. */
export function noSuchUser(name: string): SalaError {
  return new SalaError('SALA_E_USER_UNKNOWN', `There is no account named "${name}".`);
}
