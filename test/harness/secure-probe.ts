/**
 * Child program for LAN tests: both ends of a secure channel (common/crypto) over real TCP.
 *   node dist/test/harness/secure-probe.js <role> <args...>
 *
 *   secure-server <bindAddress>
 *     → secure.listening { port, fingerprint, publicKey (hex) }
 *     → per connection: secure.accepted { remoteFingerprint, remoteAddress }, secure.message { text }
 *       (each message is echoed back as `echo:<text>`), or secure.failed { code }
 *   secure-client <host> <port> <expectedPublicKeyHex> <text>
 *     → secure.connected { fingerprint, remoteFingerprint }, secure.message { text }, then exits
 *     → secure.failed { code } and exit 0 when the handshake is refused
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import {
  acceptSecure,
  connectSecure,
  fingerprint,
  generateStaticKeyPair,
  initCrypto,
  type SecureChannel,
} from '../../common/crypto/index.js';
import { UsageError, argAt, emit, portArg, runProbe } from './probe-io.js';

const PURPOSE = 'harness';
const REPLY_TIMEOUT_MS = 5_000;

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'UNKNOWN';
}

function hexKey(text: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(text)) throw new UsageError('<expectedPublicKeyHex> must be 64 lower-case hex digits');
  return Buffer.from(text, 'hex');
}

async function secureServer(argv: readonly string[]): Promise<() => Promise<void>> {
  const bindAddress = argAt(argv, 0, 'bindAddress');
  await initCrypto();
  const staticKeyPair = generateStaticKeyPair();
  const channels = new Set<SecureChannel>();
  const server = createServer((socket: Socket) => {
    socket.on('error', () => undefined); // acceptSecure reports failures itself
    acceptSecure(socket, { staticKeyPair, purpose: PURPOSE }).then(
      (channel) => {
        channels.add(channel);
        channel.on('error', (err: unknown) => {
          emit('warning', { message: err instanceof Error ? err.message : String(err), code: errorCode(err) });
        });
        channel.on('close', () => channels.delete(channel));
        emit('secure.accepted', {
          remoteFingerprint: fingerprint(channel.remoteStatic),
          remoteAddress: channel.remoteAddress ?? null,
        });
        channel.on('data', (message: Buffer) => {
          const text = message.toString('utf8');
          emit('secure.message', { text });
          channel.write(Buffer.from(`echo:${text}`, 'utf8'));
        });
        channel.on('end', () => channel.end());
      },
      (err: unknown) => {
        emit('secure.failed', { code: errorCode(err) });
      },
    );
  });
  server.on('error', (err) => {
    emit('error', { message: err.message });
  });
  server.listen(0, bindAddress);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  emit('secure.listening', {
    port: address.port,
    fingerprint: fingerprint(staticKeyPair.publicKey),
    publicKey: Buffer.from(staticKeyPair.publicKey).toString('hex'),
  });
  return async () => {
    for (const channel of channels) channel.destroy();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  };
}

async function secureClient(argv: readonly string[]): Promise<() => Promise<void>> {
  const host = argAt(argv, 0, 'host');
  const port = portArg(argv, 1, 'port');
  const expectedRemoteStatic = hexKey(argAt(argv, 2, 'expectedPublicKeyHex'));
  const text = argAt(argv, 3, 'text');
  await initCrypto();
  const staticKeyPair = generateStaticKeyPair();
  let channel: SecureChannel;
  try {
    channel = await connectSecure({ host, port, staticKeyPair, purpose: PURPOSE, expectedRemoteStatic });
  } catch (err) {
    emit('secure.failed', { code: errorCode(err) });
    process.exit(0);
  }
  emit('secure.connected', {
    fingerprint: fingerprint(staticKeyPair.publicKey),
    remoteFingerprint: fingerprint(channel.remoteStatic),
  });
  const reply = once(channel, 'data', { signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
  channel.write(Buffer.from(text, 'utf8'));
  const [message] = (await reply) as [Buffer];
  emit('secure.message', { text: message.toString('utf8') });
  channel.end();
  await once(channel, 'close');
  process.exit(0);
}

const ROLES: Readonly<Record<string, (argv: readonly string[]) => Promise<() => Promise<void>>>> = {
  'secure-server': secureServer,
  'secure-client': secureClient,
};

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const run = ROLES[role];
  if (run === undefined) throw new UsageError(`unknown role "${role}"; expected one of ${Object.keys(ROLES).join(', ')}`);
  return run(roleArgs);
});
