import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  connectSecure,
  fingerprint,
  initCrypto,
  loadOrCreateIdentity,
  MessageChannel,
  SalaError,
  verifyStaticKeyProof,
  type SecureChannel,
} from '../common/index.js';
import { JsonChild } from '../common/process/index.js';

/**
 * `npm run demo`: what Sala can do so far, on one machine, with nothing but loopback traffic.
 * Two processes, an encrypted handshake in which the server proves the key whose fingerprint it
 * showed, an echo over the channel, and an impostor refused before anything is sent to it.
 */
const here = dirname(fileURLToPath(import.meta.url));
const echoServerScript = join(here, 'echo-server.js');

const out = (text = ''): void => void process.stdout.write(`${text}\n`);
const step = (n: number, total: number, text: string): void => out(`\n[${n}/${total}] ${text}`);

async function startEchoServer(dataDir: string): Promise<{ child: JsonChild; port: number; fingerprint: string }> {
  const child = new JsonChild(process.execPath, [echoServerScript, dataDir], { label: 'echo server' });
  const line = await child.waitForEvent('listening', { timeoutMs: 15_000 });
  return { child, port: Number(line['port']), fingerprint: String(line['fingerprint']) };
}

/** Connects, insisting that the server proves the signing key with the confirmed fingerprint. */
function connectPinned(port: number, deviceDh: Parameters<typeof connectSecure>[0]['staticKeyPair'], pinned: string): Promise<SecureChannel> {
  return connectSecure({
    host: '127.0.0.1',
    port,
    purpose: 'demo',
    staticKeyPair: deviceDh,
    verifyRemote: ({ payload, remoteStatic }) => {
      const proven = verifyStaticKeyProof(payload, remoteStatic);
      if (proven.fingerprint !== pinned) {
        throw new SalaError(
          'SALA_E_REMOTE_KEY_MISMATCH',
          `This server proved key ${proven.fingerprint}, not the confirmed ${pinned}: refusing it.`,
        );
      }
    },
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const total = 5;
  const workDir = mkdtempSync(join(tmpdir(), 'sala-demo-'));
  const children: JsonChild[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.stop()));
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    out('\nInterrupted; stopping the demo processes.');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    await initCrypto();
    out('Sala demo: the encrypted foundation (everything stays on 127.0.0.1).');
    out(`Temporary data folder: ${workDir}`);

    step(1, total, 'Starting an echo server in a second process, with its own key.');
    const server = await startEchoServer(join(workDir, 'server'));
    children.push(server.child);
    out(`      listening on 127.0.0.1:${server.port}`);
    out(`      server key fingerprint: ${server.fingerprint}   (a teacher shows this code to the class)`);

    step(2, total, 'This process makes its device key (kept owner-only in its data folder).');
    const { identity: device } = loadOrCreateIdentity(join(workDir, 'device', 'device-key.json'));
    out(`      device key fingerprint: ${fingerprint(device.signing.publicKey)}`);

    step(3, total, 'Encrypted handshake: Noise XX over X25519, ChaCha20-Poly1305 and BLAKE2b.');
    const started = performance.now();
    const channel = await connectPinned(server.port, device.dh, server.fingerprint);
    const handshakeMs = performance.now() - started;
    out(`      the server proved the key ${server.fingerprint}, the fingerprint it showed: confirmed.`);
    out(`      handshake done in ${handshakeMs.toFixed(1)} ms; session id ${Buffer.from(channel.handshakeHash).subarray(0, 8).toString('hex')}`);
    const messages = new MessageChannel(channel);
    channel.resume();

    step(4, total, 'Echo over the channel: each text goes out encrypted and comes back.');
    for (const text of ['Hello from the Sala demo!', 'Grüße, ¡hola!, こんにちは', 'Every frame is sealed with a fresh nonce.']) {
      const { rttMs, data } = await messages.ping(Buffer.from(text, 'utf8'), { signal: AbortSignal.timeout(5_000) });
      const echoed = Buffer.from(data ?? new Uint8Array()).toString('utf8');
      if (echoed !== text) throw new Error(`echo mismatch: sent ${JSON.stringify(text)}, got ${JSON.stringify(echoed)}`);
      out(`      → ${JSON.stringify(text)}  ← echoed intact in ${rttMs.toFixed(2)} ms`);
    }
    const rtts: number[] = [];
    for (let i = 0; i < 1_000; i++) rtts.push((await messages.ping(Buffer.alloc(100), { signal: AbortSignal.timeout(5_000) })).rttMs);
    rtts.sort((a, b) => a - b);
    out(`      1,000 round trips of 100 bytes: p50 ${(percentile(rtts, 50) * 1000).toFixed(0)} µs, p99 ${(percentile(rtts, 99) * 1000).toFixed(0)} µs`);
    await messages.close();

    step(5, total, 'An impostor server with a different key is refused before anything is sent to it.');
    const impostor = await startEchoServer(join(workDir, 'impostor'));
    children.push(impostor.child);
    let refusal: string;
    try {
      const wrong = await connectPinned(impostor.port, device.dh, server.fingerprint);
      wrong.destroy();
      throw new Error('the impostor was accepted');
    } catch (err) {
      if (!(err instanceof SalaError) || err.code !== 'SALA_E_REMOTE_KEY_MISMATCH') throw err;
      refusal = err.code;
    }
    out(`      impostor key ${impostor.fingerprint} ≠ confirmed ${server.fingerprint}: refused with ${refusal}.`);

    out('\nSummary');
    out(`  ✔ two processes, one encrypted channel on 127.0.0.1 (handshake ${handshakeMs.toFixed(1)} ms)`);
    out('  ✔ the server proved the key behind the fingerprint it showed');
    out(`  ✔ 3 texts and 1,000 pings echoed intact (p50 ${(percentile(rtts, 50) * 1000).toFixed(0)} µs)`);
    out('  ✔ an impostor was refused before the handshake finished');
    out('Next: the rendezvous server, peers, files and groups are built on this channel.');
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`\nThe demo failed: ${err instanceof SalaError ? `${err.code}: ${err.message}` : String(err)}\n`);
  process.exit(1);
});
