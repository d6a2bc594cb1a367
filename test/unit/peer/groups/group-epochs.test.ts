import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../../../common/index.js';
import { GroupEpochs, MAX_OVERLAPPING_EPOCHS, type GroupState } from '../../../../peer/groups/group-epochs.js';

function state(epoch: number, members: number[] = [0, 1]): GroupState {
  return {
    type: 'group.state',
    group: 'class',
    groupId: new Uint8Array(16).fill(7),
    address: '239.192.0.1',
    port: 7422,
    epoch,
    key: new Uint8Array(32).fill(epoch),
    members: members.map((senderIdx) => ({ senderIdx, user: `u${senderIdx}`, sessionId: `s${senderIdx}`, sigPk: new Uint8Array(32).fill(senderIdx) })),
  };
}

describe('GroupEpochs', () => {
  beforeAll(async () => {
    await initCrypto();
  });

  it('accepts a superseded epoch for overlapMs after the rotation, then forgets and zeroes its key', () => {
    const epochs = new GroupEpochs(state(1), 5_000);
    expect(epochs.apply(state(2, [1, 2]), 1_000)).toBe('rotated');
    const oldKey = epochs.key(1, 1_000);
    expect(oldKey).toEqual(new Uint8Array(32).fill(1));
    expect(epochs.member(1, 0, 5_999)?.user).toBe('u0');
    expect(epochs.heldSenderIndexes(5_999)).toEqual(new Set([0, 1, 2]));
    expect(epochs.key(1, 6_000)).toBeUndefined();
    expect(epochs.expire(6_000)).toBeUndefined();
    expect(oldKey).toEqual(new Uint8Array(32)); // zeroed
    expect(epochs.heldSenderIndexes(6_000)).toEqual(new Set([1, 2]));
    expect(epochs.member(2, 0, 6_000)).toBeUndefined();
  });

  it('ignores a state older than the current epoch and keeps the key of a repeated one', () => {
    const epochs = new GroupEpochs(state(3), 5_000);
    expect(epochs.apply(state(2), 0)).toBe('stale');
    expect(epochs.apply(state(3), 0)).toBe('same');
    expect(epochs.epoch).toBe(3);
    expect(epochs.key(3, 0)).toEqual(new Uint8Array(32).fill(3));
  });

  it('keeps at most MAX_OVERLAPPING_EPOCHS superseded epochs in a burst of rotations', () => {
    const epochs = new GroupEpochs(state(1), 5_000);
    for (let epoch = 2; epoch <= MAX_OVERLAPPING_EPOCHS + 3; epoch += 1) epochs.apply(state(epoch), 0);
    const current = MAX_OVERLAPPING_EPOCHS + 3;
    expect(epochs.isHeld(current - MAX_OVERLAPPING_EPOCHS, 0)).toBe(true);
    expect(epochs.isHeld(current - MAX_OVERLAPPING_EPOCHS - 1, 0)).toBe(false);
  });

  it('zeroes every key on destroy()', () => {
    const epochs = new GroupEpochs(state(1), 5_000);
    epochs.apply(state(2), 0);
    const keys = [epochs.key(1, 0), epochs.key(2, 0)];
    epochs.destroy();
    for (const key of keys) expect(key).toEqual(new Uint8Array(32));
  });
});
