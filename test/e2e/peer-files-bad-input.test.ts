/**
 * The bad inputs of issue 6 (file transfer) against a real receiving Peer: a sender that lies about
 * the size or the content, ignores credit or order, names files to escape the downloads folder, or
 * floods offers (a real LinkManager with a real session of the same server, driven by hand); a disk
 * that fills up (a real tmpfs); offers nobody answers; a source file deleted mid-transfer. Each ends
 * with the SALA_E_ code on both sides, nothing stored, and the receiver still working.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { Peer, PeerOptions } from '../../peer/peer.js';
import { describeLan } from '../harness/netns.js';
import { rejectsWithSalaError } from '../helpers/errors.js';
import { rogueSender, sha256Of, type RogueSender } from '../helpers/file-rogue-sender.js';
import { freeBytesIn, mountTmpfs } from '../helpers/file-tmpfs.js';
import { FAST_PEER_TUNING, nextEvent, startPeer } from '../helpers/peers.js';
import { register, startServer, tempDir } from '../helpers/rendezvous.js';

const next = nextEvent;
const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * alice (honest) and bob (the receiver) on one server; bob's downloads three levels below a temp
 * root, so that anything written outside them shows up in the root.
 */
async function scene(options: { bob?: Partial<PeerOptions>; alice?: Partial<PeerOptions>; downloads?: string } = {}) {
  const server = await startServer();
  await register(server, 'alice');
  await register(server, 'bob');
  const root = tempDir('sala-bad-input-');
  const downloads = options.downloads ?? join(root, 'a', 'b', 'downloads');
  const alice = await startPeer(server, 'alice', options.alice);
  const bob = await startPeer(server, 'bob', { downloadsDir: downloads, isAutoAcceptFiles: true, ...options.bob });
  await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
  return { server, root, downloads, alice, bob };
}

/** scene() plus mallory, a hand-driven sender linked to bob. */
async function sceneWithMallory(options: Parameters<typeof scene>[0] = {}) {
  const parts = await scene(options);
  const up = next(parts.bob, 'link.up', ({ user }) => user === 'mallory');
  const mallory = await rogueSender(parts.server, 'mallory', parts.bob);
  await up; // bob's file service serves the link from here on
  return { ...parts, mallory };
}

function fileOf(bytes: number, name = 'notes.bin'): { path: string; content: Buffer } {
  const content = randomBytes(bytes);
  const path = join(tempDir('sala-send-'), name);
  writeFileSync(path, content);
  return { path, content };
}

/** The names in a folder (none when it does not exist). */
function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** Every path below `root`, relative and sorted. */
function tree(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      found.push(relative(root, path));
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(root);
  return found.sort();
}

/** The receiver still takes a file from someone else (auto-accepted), intact. */
async function expectStillReceives(alice: Peer, bob: Peer): Promise<void> {
  const { path, content } = fileOf(100 * KiB, 'after.bin');
  const received = next(bob, 'file.received');
  const { transferId } = await alice.sendFile('bob', path);
  const [got] = await received;
  expect(got.transferId).toBe(transferId);
  expect(readFileSync(got.path).equals(content)).toBe(true);
}

/** Mallory's offer, accepted by bob, with its first credit in hand. */
async function acceptedOffer(mallory: RogueSender, name: string, content: Buffer, claims: { size?: number; sha256?: Uint8Array } = {}) {
  const transferId = mallory.offer(name, content, claims);
  const accept = await mallory.inbox.next('file.accept', (m) => m.transferId === transferId);
  expect(accept.offset).toBe(0);
  await mallory.inbox.waitForCredit(transferId, 1);
  return transferId;
}

describe('a receiver given a file whose bytes do not match the offer', () => {
  it('fails with SALA_E_TRANSFER_CORRUPT when the sender sends more bytes than announced, and stores nothing', async () => {
    const { alice, bob, downloads, mallory } = await sceneWithMallory();
    const content = randomBytes(1000);
    const transferId = await acceptedOffer(mallory, 'more.bin', content);
    expect(mallory.inbox.creditFor(transferId)).toBe(1000); // never more than the file
    const failed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    mallory.chunks(transferId, 0, content); // every announced byte, within credit…
    mallory.chunks(transferId, 1000, randomBytes(24)); // …and 24 more
    mallory.done(transferId);
    expect((await failed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(entries(downloads)).toEqual([]); // neither the .part nor a final file
    await expectStillReceives(alice, bob);
  });

  it('fails with SALA_E_TRANSFER_CORRUPT when a single chunk reaches past the announced size', async () => {
    const { alice, bob, downloads, mallory } = await sceneWithMallory();
    const content = randomBytes(1500);
    const transferId = await acceptedOffer(mallory, 'long.bin', content, { size: 1000, sha256: sha256Of(content.subarray(0, 1000)) });
    const failed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    mallory.chunks(transferId, 0, content);
    expect((await failed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(entries(downloads)).toEqual([]);
    await expectStillReceives(alice, bob);
  });

  it('fails with SALA_E_TRANSFER_CORRUPT when the sender says done after fewer bytes than announced', async () => {
    const { alice, bob, downloads, mallory } = await sceneWithMallory();
    const content = randomBytes(1000);
    const transferId = await acceptedOffer(mallory, 'short.bin', content);
    const failed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    mallory.chunks(transferId, 0, content.subarray(0, 600));
    mallory.done(transferId);
    expect((await failed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(entries(downloads)).toEqual([]);
    await expectStillReceives(alice, bob);
  });

  it('fails with SALA_E_TRANSFER_CORRUPT when the content does not match the offered hash, and tells the sender', async () => {
    const { alice, bob, downloads, mallory } = await sceneWithMallory();
    const offered = randomBytes(200 * KiB);
    const sent = Buffer.from(offered);
    sent[150 * KiB] = (sent[150 * KiB] ?? 0) ^ 0x01; // one bit, in the third chunk
    const transferId = mallory.offer('tampered.bin', offered);
    const failed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    await mallory.sendAccepted(transferId, sent);
    expect((await failed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(mallory.inbox.received.some((m) => m.type === 'file.complete')).toBe(false);
    expect(entries(downloads)).toEqual([]);
    await expectStillReceives(alice, bob);
  });

  it('fails with SALA_E_TRANSFER_CORRUPT when a chunk skips ahead of the next expected offset', async () => {
    const { alice, bob, downloads, mallory } = await sceneWithMallory();
    const content = randomBytes(200 * KiB);
    const transferId = await acceptedOffer(mallory, 'skipping.bin', content);
    const failed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    mallory.chunks(transferId, 0, content.subarray(0, 64 * KiB));
    mallory.chunks(transferId, 128 * KiB, content.subarray(128 * KiB, 192 * KiB)); // 64 KiB left out
    expect((await failed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_CORRUPT' });
    expect(entries(downloads)).toEqual([]);
    await expectStillReceives(alice, bob);
  });
});

/** Mallory's offer of 1 MiB, accepted by a bob with a 16 KiB window, and alice already linked to bob. */
async function creditOverrun() {
  const window = 16 * KiB;
  const parts = await sceneWithMallory({ bob: { tuning: { ...FAST_PEER_TUNING, fileWindowBytes: window } } });
  const { alice, bob, mallory } = parts;
  const hello = next(bob, 'message');
  await alice.send('bob', 'hello'); // alice's link to bob is up before mallory misbehaves
  await hello;
  const content = randomBytes(1 * MiB);
  const transferId = await acceptedOffer(mallory, 'greedy.bin', content);
  expect(mallory.inbox.creditFor(transferId)).toBe(window);
  return { ...parts, content, transferId };
}

describe('a receiver given more file data than it granted credit for', () => {
  it('closes that link (link.down SALA_E_PROTOCOL_INVALID_FIELD), writes none of it, and keeps its other links', async () => {
    const { alice, bob, downloads, mallory, content, transferId } = await creditOverrun();
    const aliceDown = vi.fn();
    bob.on('link.down', ({ user }) => user === 'alice' && aliceDown());
    const down = next(bob, 'link.down', ({ user }) => user === 'mallory');
    // (not events.once: the channel reports its error, SALA_E_CHANNEL_TRUNCATED here, before 'close')
    const closed = new Promise((resolve) => mallory.link.messages.once('close', () => resolve(undefined)));
    mallory.chunks(transferId, 0, content.subarray(0, 64 * KiB)); // four times the credit, in one chunk
    expect((await down)[0].code).toBe('SALA_E_PROTOCOL_INVALID_FIELD');
    await closed;
    // No byte of the chunk reached the disk and nothing was stored, not even the empty .part.
    await vi.waitFor(() => expect(entries(downloads)).toEqual([]));
    await expectStillReceives(alice, bob);
    expect(aliceDown).not.toHaveBeenCalled();
  });

  it('ends the transfer (file.failed) and removes its .part after closing the link', async () => {
    const { bob, downloads, mallory, content, transferId } = await creditOverrun();
    const failures: string[] = [];
    bob.on('file.failed', (f) => failures.push(f.transferId));
    const down = next(bob, 'link.down', ({ user }) => user === 'mallory');
    mallory.chunks(transferId, 0, content.subarray(0, 64 * KiB));
    await down;
    await vi.waitFor(() => expect(failures).toEqual([transferId]), { timeout: 500 });
    await vi.waitFor(() => expect(entries(downloads)).toEqual([]), { timeout: 500 });
  });
});

describeLan('a receiver whose disk fills up', () => {
  it('refuses at accept an offer larger than the free space with SALA_E_DISK_FULL on both sides', async () => {
    const mount = mountTmpfs(2 * MiB);
    const downloads = join(mount, 'downloads');
    const { alice, bob } = await scene({ downloads, bob: { isAutoAcceptFiles: false } });
    const { path } = fileOf(3 * MiB);
    const offer = next(bob, 'file.offer');
    const { transferId } = await alice.sendFile('bob', path);
    await offer;
    const aliceFailed = next(alice, 'file.failed', (f) => f.transferId === transferId);
    const bobFailed = next(bob, 'file.failed', (f) => f.transferId === transferId);
    await rejectsWithSalaError(bob.acceptFile(transferId), 'SALA_E_DISK_FULL');
    expect((await bobFailed)[0].code).toBe('SALA_E_DISK_FULL');
    expect((await aliceFailed)[0].code).toBe('SALA_E_DISK_FULL');
    expect(entries(downloads)).toEqual([]);
    expect(freeBytesIn(mount)).toBeGreaterThan(1.9 * MiB); // nothing was even started
  });

  it('fails with SALA_E_DISK_FULL on both sides when the space runs out mid-transfer, and removes the .part', async () => {
    const mount = mountTmpfs(4 * MiB);
    const downloads = join(mount, 'downloads');
    // A small window: most of the file is still to come when the disk fills.
    const { alice, bob } = await scene({ downloads, bob: { tuning: { ...FAST_PEER_TUNING, fileWindowBytes: 64 * KiB } } });
    const { path } = fileOf(2 * MiB); // passes the check at accept: 2 MiB + 1 MiB margin < 4 MiB
    // Something else takes every free byte as soon as the first chunk is on disk.
    bob.once('file.progress', () => fillUp(join(mount, 'filler')));
    const aliceFailed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    const { transferId } = await alice.sendFile('bob', path);
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_DISK_FULL' });
    expect((await aliceFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_DISK_FULL' });
    expect(entries(downloads)).toEqual([]);
    expect(entries(mount)).toEqual(['downloads', 'filler']);
  });
});

/** Writes to `path` until the file system says ENOSPC. */
function fillUp(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * KiB, 0x5a);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe('an offer nobody answers', () => {
  it('times out with SALA_E_TRANSFER_TIMEOUT on both sides, and the receiver forgets it', async () => {
    const tuning = { ...FAST_PEER_TUNING, fileOfferTimeoutMs: 300 };
    const { alice, bob, downloads } = await scene({ alice: { tuning }, bob: { tuning, isAutoAcceptFiles: false } });
    const { path } = fileOf(1000);
    const offer = next(bob, 'file.offer');
    const aliceFailed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    const { transferId } = await alice.sendFile('bob', path);
    await offer;
    expect((await aliceFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_TIMEOUT' });
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_TIMEOUT' });
    await rejectsWithSalaError(bob.acceptFile(transferId), 'SALA_E_TRANSFER_UNKNOWN');
    expect(entries(downloads)).toEqual([]);
  });

  it('is dropped by the receiver itself when the sender never withdraws it, and the sender is told', async () => {
    const { bob, downloads, mallory } = await sceneWithMallory({ bob: { tuning: { ...FAST_PEER_TUNING, fileOfferTimeoutMs: 300 }, isAutoAcceptFiles: false } });
    const offer = next(bob, 'file.offer');
    const transferId = mallory.offer('ignored.bin', randomBytes(1000));
    await offer;
    const bobFailed = next(bob, 'file.failed');
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_TIMEOUT' });
    expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === transferId)).toMatchObject({ code: 'SALA_E_TRANSFER_TIMEOUT' });
    await rejectsWithSalaError(bob.acceptFile(transferId), 'SALA_E_TRANSFER_UNKNOWN');
    expect(entries(downloads)).toEqual([]);
  });
});

describe('a sender whose file is deleted mid-transfer', () => {
  it('fails with SALA_E_FILE_UNREADABLE on both sides and the receiver keeps nothing', async () => {
    const { alice, bob, downloads } = await scene({ bob: { tuning: { ...FAST_PEER_TUNING, fileWindowBytes: 64 * KiB } } });
    const { path } = fileOf(8 * MiB);
    // Deleted right after the first chunk left; the credit window keeps most of the file unsent.
    alice.once('file.progress', () => unlinkSync(path));
    const aliceFailed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    const received = vi.fn();
    bob.on('file.received', received);
    const { transferId } = await alice.sendFile('bob', path);
    // On Linux an unlinked file that is open stays readable: the sender reads every offered byte,
    // then its final check that the file is still the one offered (stat of the path) finds no file
    // and it refuses to say file.done. Failing here is right: the sender's promise that the content
    // is what it offered now rests on a file that no longer exists, and the user asked for that file
    // to be gone. (Completing with the offered, hash-verified bytes would also be acceptable; what
    // must never happen is a stored file whose content differs from the offer.)
    expect((await aliceFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_FILE_UNREADABLE' });
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_FILE_UNREADABLE' });
    expect(received).not.toHaveBeenCalled();
    expect(entries(downloads)).toEqual([]);
  });
});

describe('a sender offering hostile file names', () => {
  it('has each stored inside the downloads folder under its safe name, and nothing created outside', async () => {
    const { root, bob, downloads, mallory } = await sceneWithMallory();
    const long = `${'n'.repeat(251)}.txt`; // 255 bytes, the most an offer may carry
    const cases: [offered: string, stored: string][] = [
      ['../../x', 'x'],
      ['C:\\Windows\\x.dll', 'x.dll'],
      ['NUL', '_NUL'],
      ['.bashrc', '_bashrc'],
      ['..', 'file'],
      ['/etc/passwd', 'passwd'],
      [long, `${'n'.repeat(196)}.txt`],
    ];
    expect(Buffer.byteLength(long)).toBe(255);
    for (const [offered, stored] of cases) {
      const content = randomBytes(5 * KiB);
      const shown = next(bob, 'file.offer');
      const received = next(bob, 'file.received');
      const transferId = mallory.offer(offered, content);
      expect((await shown)[0]).toMatchObject({ transferId, name: stored });
      await mallory.sendAccepted(transferId, content);
      const [got] = await received;
      expect(got).toMatchObject({ transferId, path: join(downloads, stored) });
      expect(readFileSync(got.path).equals(content)).toBe(true);
      await mallory.inbox.next('file.complete', (m) => m.transferId === transferId);
    }
    const inside = cases.map(([, stored]) => stored).sort();
    expect(entries(downloads)).toEqual(inside);
    expect(tree(root)).toEqual(['a', join('a', 'b'), join('a', 'b', 'downloads'), ...inside.map((name) => join('a', 'b', 'downloads', name))].sort());
  });
});

describe('a sender flooding offers', () => {
  it('answers the offers beyond 16 unfinished from one sender with file.cancel SALA_E_RATE_LIMIT and stays responsive', async () => {
    const { alice, bob, mallory } = await sceneWithMallory({ bob: { isAutoAcceptFiles: false } });
    const shown: string[] = [];
    bob.on('file.offer', ({ transferId }) => shown.push(transferId));
    const ids = Array.from({ length: 22 }, (_, i) => mallory.offer(`flood-${i}.bin`, randomBytes(16)));
    for (const id of ids.slice(16)) {
      expect(await mallory.inbox.next('file.cancel', (m) => m.transferId === id)).toMatchObject({ code: 'SALA_E_RATE_LIMIT' });
    }
    // A round trip on the same link: every offer before it has been handled.
    await mallory.link.messages.ping(undefined, { signal: AbortSignal.timeout(5_000) });
    expect(shown).toEqual(ids.slice(0, 16));
    expect(mallory.inbox.received.filter((m) => m.type === 'file.cancel')).toHaveLength(6);
    // Still answering: a chat message from someone else, and an answer to one of the waiting offers.
    const message = next(bob, 'message');
    await alice.send('bob', 'still there?');
    expect((await message)[0]).toMatchObject({ from: 'alice', text: 'still there?' });
    await bob.declineFile(ids[0] as string);
    await mallory.inbox.next('file.decline', (m) => m.transferId === ids[0]);
  });

  // The limit is per sender: one flooding peer cannot get everyone else's offers refused.
  it('still shows offers from other users while one user has its 16 waiting', async () => {
    const { alice, bob, mallory } = await sceneWithMallory({ bob: { isAutoAcceptFiles: false } });
    for (let i = 0; i < 16; i++) mallory.offer(`flood-${i}.bin`, randomBytes(16));
    await mallory.link.messages.ping(undefined, { signal: AbortSignal.timeout(5_000) });
    const { path } = fileOf(100);
    // Whichever comes first: bob shows alice's offer, or alice hears it was refused.
    const outcome = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('neither file.offer at bob nor file.failed at alice')), 5_000);
      const settle = (what: string): void => {
        clearTimeout(timer);
        resolve(what);
      };
      bob.on('file.offer', ({ from }) => from === 'alice' && settle('shown'));
      alice.on('file.failed', ({ code }) => settle(code));
    });
    await alice.sendFile('bob', path);
    expect(await outcome).toBe('shown');
  });
});
