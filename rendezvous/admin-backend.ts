import { normalizeUserName, SalaError } from '../common/index.js';
import type { Accounts } from './accounts.js';
import type { ActivityLog } from './activity-log.js';
import type { AdminBackend, AdminSessionView, AdminUserView } from './admin/backend.js';
import type { ServerContext } from './peer-connection.js';
import type { LiveSession, SessionEndReason, SessionRegistry } from './sessions.js';
import type { LogQuery, LogStore, UserRecord } from './store/store.js';
import type { TicketAuthority } from './ticket-authority.js';

function userView(user: UserRecord): AdminUserView {
  return { name: user.name, isDisabled: user.isDisabled, createdAt: user.createdAt, passwordChangedAt: user.passwordChangedAt };
}

function sessionView(session: LiveSession): AdminSessionView {
  return {
    sessionId: session.sessionId,
    user: session.user,
    address: session.address,
    since: new Date(session.sinceMs).toISOString(),
    isConnected: session.link !== undefined,
  };
}

/** The admin API's view of the running server (rendezvous/admin/backend.ts). */
export function createAdminBackend(parts: {
  accounts: Accounts;
  sessions: SessionRegistry;
  activity: ActivityLog;
  store: LogStore;
  tickets: TicketAuthority;
  ctx: ServerContext;
}): AdminBackend {
  const { accounts, sessions, activity, store } = parts;

  const endAll = (user: string, reason: SessionEndReason, error: SalaError): AdminSessionView[] => {
    const ended = sessions.forUser(user);
    for (const session of ended) sessions.end(session, reason, error);
    return ended.map(sessionView);
  };

  return {
    async listUsers() {
      return (await accounts.list()).map(userView).sort((a, b) => a.name.localeCompare(b.name));
    },
    async addUser(name, password) {
      const user = await accounts.register(name, password);
      activity.server('user.added', { user: user.name, detail: 'by=admin' });
      return userView(user);
    },
    async setUserDisabled(name, isDisabled) {
      const user = await accounts.setDisabled(name, isDisabled);
      activity.server(isDisabled ? 'user.disabled' : 'user.enabled', { user: user.name, detail: 'by=admin' });
      if (isDisabled) {
        endAll(user.name, 'disable', new SalaError('SALA_E_ACCOUNT_DISABLED', 'The administrator disabled this account.'));
      }
      return userView(user);
    },
    async changePassword(name, password) {
      const user = await accounts.changePassword(name, password);
      activity.server('user.password_changed', { user: user.name, detail: 'by=admin' });
      endAll(user.name, 'password', new SalaError('SALA_E_KICKED', 'The administrator changed this account\'s password; log in again.'));
      return userView(user);
    },
    async listSessions() {
      return sessions.list().map(sessionView).sort((a, b) => a.since.localeCompare(b.since));
    },
    async kick(target) {
      const kicked = new SalaError('SALA_E_KICKED', 'An administrator ended this session.');
      const byId = sessions.get(target);
      let ended: AdminSessionView[];
      if (byId !== undefined) {
        ended = [sessionView(byId)];
        sessions.end(byId, 'kick', kicked);
      } else {
        let user: string;
        try {
          user = normalizeUserName(target);
        } catch {
          throw noSession(target);
        }
        ended = endAll(user, 'kick', kicked);
      }
      if (ended.length === 0) throw noSession(target);
      for (const s of ended) activity.server('kick', { user: s.user, session: s.sessionId, detail: `address=${s.address}` });
      return ended;
    },
    async queryLogs(query: LogQuery) {
      return store.query(query);
    },
  };
}

function noSession(target: string): SalaError {
  return new SalaError('SALA_E_SESSION_UNKNOWN', `No live session or user with sessions matches "${target.slice(0, 64)}".`);
}
