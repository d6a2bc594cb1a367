export type {
  LogQuery,
  LogRecord,
  LogStore,
  SessionRecord,
  SessionStore,
  Store,
  UserRecord,
  UserStore,
} from './store.js';
export { openNedbStore, DEFAULT_COMPACTION_INTERVAL_MS, type NedbStoreOptions } from './nedb-store.js';
export { normalizeIsoTimestamp, parseIsoTimestampMs } from './iso-time.js';
