import { randomUUID } from 'node:crypto';
import type { LogEvent, Logger } from '../common/index.js';
import type { LogRecord, LogStore } from './store/store.js';

export interface ServerEventInput {
  user: string;
  session?: string;
  detail?: string;
}

/**
 * The activity log sink. Server events (logins, refusals, kicks…) are written as they happen; peer
 * events arrive in batches and are attributed to the session that sent them — a peer cannot write
 * events for another user. Event ids are namespaced by user, so one user cannot suppress another's
 * events by reusing their ids, and a retried batch is stored once.
 */
export class ActivityLog {
  readonly #store: LogStore;
  readonly #log: Logger;

  constructor(store: LogStore, logger: Logger) {
    this.#store = store;
    this.#log = logger;
  }

  /** Records a server-side event; failures are logged, never thrown into the login path. */
  server(event: string, input: ServerEventInput, nowMs = Date.now()): void {
    const record: LogRecord = {
      id: `server/${randomUUID()}`,
      at: new Date(nowMs).toISOString(),
      user: input.user,
      session: input.session ?? '',
      event,
      detail: input.detail ?? '',
      source: 'server',
    };
    this.#store.append([record]).catch((err: unknown) => this.#log.error('activity.store_failed', { message: String(err) }));
  }

  /** Stores a peer's batch; resolves with the peer's own ids, all of which are now safely stored. */
  async fromPeer(user: string, sessionId: string, events: readonly LogEvent[]): Promise<string[]> {
    const records: LogRecord[] = events.map((e) => ({
      id: `${user}/${e.id}`,
      at: new Date(e.at).toISOString(),
      user,
      session: sessionId,
      event: e.event,
      detail: e.detail,
      source: 'peer',
    }));
    await this.#store.append(records);
    return events.map((e) => e.id);
  }
}
