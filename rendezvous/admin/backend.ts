import type { LogQuery, LogRecord, UserRecord } from '../store/store.js';

/** A live session as admin commands see it (`sessions --json`). */
export interface AdminSessionView {
  sessionId: string;
  user: string;
  address: string;
  /** ISO 8601 UTC. */
  since: string;
  /** False while the session is in its reconnect grace period. */
  isConnected: boolean;
}

export type AdminUserView = Pick<UserRecord, 'name' | 'isDisabled' | 'createdAt' | 'passwordChangedAt'>;

/**
 * What the HTTPS admin API can ask of the running server. The API layer only authenticates,
 * validates and serialises; every decision is made behind this interface. Methods throw SalaError
 * (SALA_E_INVALID_NAME, SALA_E_USER_EXISTS, SALA_E_SESSION_UNKNOWN, …) for requests that cannot be
 * done; the API turns them into 4xx answers with the code.
 */
export interface AdminBackend {
  listUsers(): Promise<AdminUserView[]>;
  addUser(name: string, password: string): Promise<AdminUserView>;
  setUserDisabled(name: string, isDisabled: boolean): Promise<AdminUserView>;
  changePassword(name: string, password: string): Promise<AdminUserView>;
  listSessions(): Promise<AdminSessionView[]>;
  /** Ends one session (by id) or every session of a user (by name); returns the ended ones. */
  kick(target: string): Promise<AdminSessionView[]>;
  queryLogs(query: LogQuery): Promise<LogRecord[]>;
}
