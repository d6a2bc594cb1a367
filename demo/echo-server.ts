import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  acceptSecure,
  createLogger,
  fingerprint,
  initCrypto,
  loadOrCreateIdentity,
  MessageChannel,
  proveStaticKey,
  shortFingerprint,
} from '../common/index.js';

/**
 * The demo's second process: a secure-channel echo server on 127.0.0.1. It proves its identity in
 * handshake msg 2, answers every ping (pings carry the demo's text), and prints one JSON line,
 * `{"event":"listening","port":…,"fingerprint":…}`, when ready. Ctrl+C / SIGTERM close it cleanly.
 * Usage: node dist/demo/echo-server.js DATA_DIR
 */
async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (dataDir === undefined) throw new Error('usage: echo-server DATA_DIR');
  await initCrypto();
  const log = createLogger({ name: 'echo-server' });
  const { identity } = loadOrCreateIdentity(join(dataDir, 'server-key.json'));
  const proof = proveStaticKey(identity);
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    acceptSecure(socket, { purpose: 'demo', staticKeyPair: identity.dh, payload: () => proof }).then(
      (channel) => {
        const peer = shortFingerprint(channel.remoteStatic);
        log.info('link.up', { peer });
        const messages = new MessageChannel(channel);
        messages.on('error', (err) => log.warn('link.error', { peer, code: err.code }));
        messages.on('close', () => log.info('link.down', { peer }));
        // Reading keeps the stream flowing; pings are answered inside MessageChannel.
        channel.resume();
      },
      (err: unknown) => log.warn('handshake.failed', { code: err instanceof Error && 'code' in err ? String(err.code) : 'unknown' }),
    );
  });
  server.on('error', (err) => {
    log.error('listen.failed', { message: err.message });
    process.exit(1);
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ event: 'listening', host: '127.0.0.1', port, fingerprint: fingerprint(identity.signing.publicKey) })}\n`);
  });

  const shutdown = (): void => {
    server.close(() => process.exit(0));
    for (const socket of sockets) socket.destroy();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // The parent closing our stdin (or dying) also ends the demo server, so no orphan is left behind.
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`echo-server: ${String(err)}\n`);
  process.exit(1);
});
