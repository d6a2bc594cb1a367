import { describe, expect, it } from 'vitest';
import type { LinkTarget } from '../../../../peer/groups/group-service-options.js';
import { monotonicMs } from '../../../../peer/groups/group-types.js';
import { MulticastReachability } from '../../../../peer/groups/multicast-reachability.js';

const BOB: LinkTarget = { user: 'bob', sessionId: 's-bob', senderIdx: 1 };
const CAROL: LinkTarget = { user: 'carol', sessionId: 's-carol', senderIdx: 2 };
const DAVE: LinkTarget = { user: 'dave', sessionId: 's-dave', senderIdx: 3 };

function setUp(members: LinkTarget[], linkOnly: Set<string> = new Set()) {
  const probes: string[] = [];
  const overLinks: string[][] = [];
  const reachability = new MulticastReachability({
    probeDelayMs: 5,
    checkDelayMs: 40,
    members: () => members,
    isLinkOnly: (sessionId) => linkOnly.has(sessionId),
    multicastProbe: () => probes.push('multicast'),
    probeOverLinks: (unheard) => overLinks.push(unheard.map((m) => m.user)),
    log: () => undefined,
  });
  return { reachability, probes, overLinks };
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('MulticastReachability', () => {
  it('probes by multicast after a change, and over links only the members not heard since', async () => {
    const { reachability, probes, overLinks } = setUp([BOB, CAROL, DAVE], new Set(['s-dave']));
    const since = monotonicMs();
    reachability.heard('s-bob', since - 1); // before the change: does not count
    reachability.changed(since, true);
    reachability.heard('s-carol', monotonicMs());
    await settle(80);
    expect(probes).toEqual(['multicast']);
    // Dave already gets everything over links; bob was not heard since the change.
    expect(overLinks).toEqual([['bob']]);
  });

  it('coalesces a burst of changes into one probe and one check', async () => {
    const { reachability, probes, overLinks } = setUp([BOB]);
    for (let i = 0; i < 5; i++) reachability.changed(monotonicMs(), true);
    await settle(80);
    expect(probes).toEqual(['multicast']);
    expect(overLinks).toEqual([['bob']]);
  });

  it('sends nothing over links when everyone was heard, and skips its own probe on joining', async () => {
    const { reachability, probes, overLinks } = setUp([BOB, CAROL]);
    const since = monotonicMs();
    reachability.changed(since, false);
    reachability.heard('s-bob', since + 1);
    reachability.heard('s-carol', since + 1);
    await settle(80);
    expect(probes).toEqual([]);
    expect(overLinks).toEqual([]);
  });

  it('does nothing once closed', async () => {
    const { reachability, probes, overLinks } = setUp([BOB]);
    reachability.changed(monotonicMs(), true);
    reachability.close();
    await settle(80);
    expect(probes).toEqual([]);
    expect(overLinks).toEqual([]);
  });
});
