/**
 * The activity-log event names CONTRACT.md requires (sala-rendezvous, "Export shape"). Exports may
 * carry more; these are the ones people and scripts can rely on, so never rename one.
 */
export const LOG_EVENT_NAMES = Object.freeze([
  'login',
  'login.failed',
  'session.refused',
  'logout',
  'kick',
  'link.up',
  'link.down',
  'message.sent',
  'message.received',
  'file.offered',
  'file.accepted',
  'file.declined',
  'file.completed',
  'file.failed',
  'group.joined',
  'group.left',
  'group.sent',
] as const);

export type LogEventName = (typeof LOG_EVENT_NAMES)[number];

const EVENT_NAME_SET: ReadonlySet<string> = new Set(LOG_EVENT_NAMES);

export function isLogEventName(value: unknown): value is LogEventName {
  return typeof value === 'string' && EVENT_NAME_SET.has(value);
}
