import { describe, expect, it } from 'vitest';
import { isLogEventName, LOG_EVENT_NAMES } from '../../../../rendezvous/logs/events.js';

// CONTRACT.md, "Export shape": the event names outside scripts rely on.
const CONTRACT_EVENTS = [
  'login', 'login.failed', 'session.refused', 'logout', 'kick', 'link.up', 'link.down', 'message.sent',
  'message.received', 'file.offered', 'file.accepted', 'file.declined', 'file.completed', 'file.failed',
  'group.joined', 'group.left', 'group.sent',
];

describe('LOG_EVENT_NAMES', () => {
  it('lists exactly the event names the contract requires, without duplicates', () => {
    expect([...LOG_EVENT_NAMES].sort()).toEqual([...CONTRACT_EVENTS].sort());
    expect(new Set(LOG_EVENT_NAMES).size).toBe(LOG_EVENT_NAMES.length);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(LOG_EVENT_NAMES)).toBe(true);
  });

  it('recognises a contract event name and rejects anything else', () => {
    expect(isLogEventName('file.completed')).toBe(true);
    expect(isLogEventName('file.complete')).toBe(false);
    expect(isLogEventName(42)).toBe(false);
  });
});
