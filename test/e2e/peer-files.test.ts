/**
 * File transfer between two Peers on 127.0.0.1: real server, real links, real files in temp dirs.
 * Offer, accept and decline, verification, resumption after a lost link and after a restart,
 * cancellation from either side, and the bad inputs of issue 6 that need no LAN.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { rejectsWithSalaError } from '../helpers/errors.js';
import { nextEvent, startPeer } from '../helpers/peers.js';
import { register, startServer, tempDir } from '../helpers/rendezvous.js';

const next = nextEvent;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function pair(options: { autoAccept?: boolean; windowBytes?: number } = {}) {
  const server = await startServer();
  await register(server, 'alice');
  await register(server, 'bob');
  const downloads = tempDir('sala-downloads-');
  const alice = await startPeer(server, 'alice');
  const bob = await startPeer(server, 'bob', {
    downloadsDir: downloads,
    isAutoAcceptFiles: options.autoAccept === true,
    ...(options.windowBytes === undefined ? {} : { tuning: { redialInitialDelayMs: 50, redialMaxDelayMs: 500, fileWindowBytes: options.windowBytes } }),
  });
  await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
  return { server, alice, bob, downloads };
}

function fileOf(bytes: number, name = 'notes.bin'): { path: string; content: Buffer } {
  const content = randomBytes(bytes);
  const path = join(tempDir('sala-send-'), name);
  writeFileSync(path, content);
  return { path, content };
}

/** An 8 MiB transfer from alice to bob, accepted and under way (a small window keeps it going a while). */
async function transferUnderWay() {
  const { alice, bob, downloads } = await pair({ windowBytes: 64 * 1024 });
  const { path } = fileOf(8 * 1024 * 1024);
  const offer = next(bob, 'file.offer');
  const { transferId } = await alice.sendFile('bob', path);
  await offer;
  const started = next(bob, 'file.progress');
  await bob.acceptFile(transferId);
  await started;
  return { alice, bob, downloads, path, transferId };
}

describe('file transfer between peers', () => {
  it('offers, accepts, streams and verifies a file; both sides report the same id, size and hash', async () => {
    const { alice, bob, downloads } = await pair();
    const { path, content } = fileOf(3 * 1024 * 1024 + 17);
    const offer = next(bob, 'file.offer');
    const offered = next(alice, 'file.offered');
    const { transferId } = await alice.sendFile('bob', path, { ref: 'f1' });
    expect((await offered)[0]).toEqual({ transferId, to: 'bob', name: 'notes.bin', size: content.length, ref: 'f1' });
    expect((await offer)[0]).toEqual({ transferId, from: 'alice', name: 'notes.bin', size: content.length });
    const sent = next(alice, 'file.sent');
    const received = next(bob, 'file.received');
    const progress: number[] = [];
    bob.on('file.progress', (p) => progress.push(p.bytes));
    await bob.acceptFile(transferId);
    const [got] = await received;
    expect(got).toEqual({ transferId, size: content.length, sha256: sha256(content), path: join(downloads, 'notes.bin') });
    expect((await sent)[0]).toEqual({ transferId, size: content.length, sha256: sha256(content) });
    expect(readFileSync(got.path).equals(content)).toBe(true);
    expect(readdirSync(downloads)).toEqual(['notes.bin']); // the .part is gone
    expect(progress.at(-1)).toBe(content.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('sends an empty file', async () => {
    const { alice, bob } = await pair({ autoAccept: true });
    const { path } = fileOf(0, 'empty.txt');
    const received = next(bob, 'file.received');
    await alice.sendFile('bob', path);
    expect((await received)[0]).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
  });

  it('tells the sender when the receiver declines, and stores nothing', async () => {
    const { alice, bob, downloads } = await pair();
    const { path } = fileOf(1000);
    const offer = next(bob, 'file.offer');
    const { transferId } = await alice.sendFile('bob', path);
    await offer;
    const declined = next(alice, 'file.declined');
    await bob.declineFile(transferId.slice(0, 8)); // an unambiguous start of the id will do
    expect((await declined)[0]).toEqual({ transferId });
    expect(readdirSync(downloads)).toEqual([]);
  });

  it('never overwrites: a second file of the same name is stored as "name (1).ext"', async () => {
    const { alice, bob, downloads } = await pair({ autoAccept: true });
    const first = fileOf(2000, 'report.pdf');
    const second = fileOf(3000, 'report.pdf');
    const both = new Promise<string[]>((resolve) => {
      const paths: string[] = [];
      bob.on('file.received', ({ path }) => {
        paths.push(path);
        if (paths.length === 2) resolve(paths);
      });
    });
    await Promise.all([alice.sendFile('bob', first.path), alice.sendFile('bob', second.path)]);
    const paths = await both;
    expect(paths.map((p) => p.slice(downloads.length + 1)).sort()).toEqual(['report (1).pdf', 'report.pdf']);
    const contents = paths.map((p) => readFileSync(p).length).sort();
    expect(contents).toEqual([2000, 3000]);
  });

  it('stores a hostile name inside the downloads folder under a safe name', async () => {
    const { alice, bob, downloads } = await pair({ autoAccept: true });
    const { path, content } = fileOf(100, 'plain.txt');
    const offer = next(bob, 'file.offer');
    const received = next(bob, 'file.received');
    await alice.sendFile('bob', path, { name: '../../../etc/CON.txt' });
    expect((await offer)[0].name).toBe('_CON.txt');
    const [got] = await received;
    expect(got.path).toBe(join(downloads, '_CON.txt'));
    expect(readFileSync(got.path).equals(content)).toBe(true);
  });

  it('cancels from the receiver: both sides get SALA_E_TRANSFER_CANCELLED and the partial file is removed', async () => {
    const { alice, bob, downloads, transferId } = await transferUnderWay();
    const aliceFailed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    await bob.cancelFile(transferId);
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CANCELLED' });
    expect((await aliceFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CANCELLED' });
    await vi.waitFor(() => expect(readdirSync(downloads)).toEqual([]));
  });

  it('cancels from the sender, with the same result on both sides', async () => {
    const { alice, bob, downloads, transferId } = await transferUnderWay();
    const bobFailed = next(bob, 'file.failed');
    await alice.cancelFile(transferId);
    expect((await bobFailed)[0]).toMatchObject({ transferId, code: 'SALA_E_TRANSFER_CANCELLED' });
    await vi.waitFor(() => expect(readdirSync(downloads)).toEqual([]));
  });

  it('resumes after the receiver restarts mid-transfer, from the bytes it already holds', async () => {
    const server = await startServer();
    await register(server, 'alice');
    await register(server, 'bob');
    const downloads = tempDir('sala-downloads-');
    const bobData = tempDir('sala-bob-');
    const tuning = { redialInitialDelayMs: 50, redialMaxDelayMs: 500, fileWindowBytes: 256 * 1024 };
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob', { dataDir: bobData, downloadsDir: downloads, isAutoAcceptFiles: true, tuning });
    await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
    const { path, content } = fileOf(12 * 1024 * 1024);
    // The receiving program dies (no logout) right after its first chunk is on disk: closed inside
    // the progress event, so the transfer cannot finish first on a fast machine.
    const died = new Promise<void>((resolve) => bob.once('file.progress', () => void bob.close().then(resolve)));
    const { transferId } = await alice.sendFile('bob', path);
    await died;

    const again = await startPeer(server, 'bob', { dataDir: bobData, downloadsDir: downloads, isAutoAcceptFiles: true, tuning });
    const progress: number[] = [];
    again.on('file.progress', (p) => progress.push(p.bytes));
    const sent = next(alice, 'file.sent', undefined, 30_000);
    const [got] = await next(again, 'file.received', undefined, 30_000);
    expect(got.transferId).toBe(transferId);
    expect(readFileSync(got.path).equals(content)).toBe(true);
    expect(got.sha256).toBe(sha256(content));
    expect((await sent)[0].transferId).toBe(transferId);
    expect(Math.min(...progress)).toBeGreaterThan(64 * 1024); // the first chunk was not sent again
    expect(readdirSync(downloads)).toEqual(['notes.bin']);
  });

  it('resumes when the sender restarts and sends the same file again, under the same transfer id', async () => {
    const server = await startServer();
    await register(server, 'alice');
    await register(server, 'bob');
    const downloads = tempDir('sala-downloads-');
    const aliceData = tempDir('sala-alice-');
    const alice = await startPeer(server, 'alice', { dataDir: aliceData });
    const bob = await startPeer(server, 'bob', { downloadsDir: downloads, isAutoAcceptFiles: true, tuning: { redialInitialDelayMs: 50, redialMaxDelayMs: 500, fileWindowBytes: 256 * 1024 } });
    await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
    const { path, content } = fileOf(12 * 1024 * 1024);
    // The sending program dies right after its first chunk left (closed inside its progress event).
    const died = new Promise<void>((resolve) => alice.once('file.progress', () => void alice.close().then(resolve)));
    const { transferId } = await alice.sendFile('bob', path);
    await died;
    await vi.waitFor(() => expect(readdirSync(downloads).some((name) => name.endsWith('.part'))).toBe(true));

    const aliceAgain = await startPeer(server, 'alice', { dataDir: aliceData });
    const progress: number[] = [];
    bob.on('file.progress', (p) => progress.push(p.bytes));
    const received = next(bob, 'file.received', undefined, 30_000);
    const again = await aliceAgain.sendFile('bob', path);
    expect(again.transferId).toBe(transferId);
    const [got] = await received;
    expect(readFileSync(got.path).equals(content)).toBe(true);
    expect(Math.min(...progress)).toBeGreaterThan(0);
  });

  it('refuses to send a folder or a missing file with SALA_E_FILE_UNREADABLE', async () => {
    const { alice } = await pair();
    expect((await rejectsWithSalaError(alice.sendFile('bob', tempDir()))).code).toBe('SALA_E_FILE_UNREADABLE');
    expect((await rejectsWithSalaError(alice.sendFile('bob', join(tempDir(), 'missing.txt')))).code).toBe('SALA_E_FILE_UNREADABLE');
  });

  it('answers an unknown transfer id with SALA_E_TRANSFER_UNKNOWN', async () => {
    const { bob } = await pair();
    expect((await rejectsWithSalaError(bob.acceptFile('no-such-transfer'))).code).toBe('SALA_E_TRANSFER_UNKNOWN');
    expect((await rejectsWithSalaError(bob.cancelFile('no-such-transfer'))).code).toBe('SALA_E_TRANSFER_UNKNOWN');
  });

  it('refuses a file over the receiver\'s size limit with SALA_E_FILE_TOO_LARGE on both sides', async () => {
    const server = await startServer();
    await register(server, 'alice');
    await register(server, 'bob');
    const alice = await startPeer(server, 'alice');
    const bob = await startPeer(server, 'bob', { downloadsDir: tempDir(), maxFileBytes: 1000 });
    await vi.waitFor(() => expect(alice.peers().find((p) => p.user === 'bob')?.online).toBe(true));
    const { path } = fileOf(1001);
    const failed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    await alice.sendFile('bob', path);
    expect((await failed)[0].code).toBe('SALA_E_FILE_TOO_LARGE');
    expect((await bobFailed)[0].code).toBe('SALA_E_FILE_TOO_LARGE');
  });

  it('fails with SALA_E_FILE_CHANGED when the file changes while it is being sent', async () => {
    const { alice, bob, downloads, path } = await transferUnderWay();
    const aliceFailed = next(alice, 'file.failed');
    const bobFailed = next(bob, 'file.failed');
    writeFileSync(path, randomBytes(8 * 1024 * 1024)); // same size, other bytes
    expect((await aliceFailed)[0].code).toBe('SALA_E_FILE_CHANGED');
    expect((await bobFailed)[0].code).toBe('SALA_E_FILE_CHANGED');
    await vi.waitFor(() => expect(readdirSync(downloads)).toEqual([]));
    expect(existsSync(join(downloads, 'notes.bin'))).toBe(false);
  });
});
