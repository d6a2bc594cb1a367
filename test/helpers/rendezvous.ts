import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { generateIdentity, initCrypto, type Identity } from '../../common/index.js';
import { registerAccount, RendezvousClient, type RendezvousClientOptions } from '../../peer/rendezvous/rendezvous-client.js';
import { RendezvousServer, type RendezvousServerOptions } from '../../rendezvous/server.js';

export const TEST_PASSWORD = 'correct horse battery';

/** Cheap argon2 for tests that are not about hashing (the real cost is tested in auth/). */
export const FAST_HASHING = Object.freeze({ opslimit: 1, memlimitBytes: 64 * 1024, workers: 1 });

export function tempDir(prefix = 'sala-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real server on 127.0.0.1 with ephemeral ports and a temp data dir, closed when the test ends. */
export async function startServer(options: Partial<RendezvousServerOptions> = {}): Promise<RendezvousServer> {
  await initCrypto();
  const server = await RendezvousServer.start({
    dataDir: options.dataDir ?? tempDir(),
    port: 0,
    adminPort: 0,
    isMdnsEnabled: false,
    passwordHashing: FAST_HASHING,
    ...options,
  });
  onTestFinished(() => server.close());
  return server;
}

export function trustOf(server: RendezvousServer): { host: string; port: number; expectedFingerprint: string } {
  return { host: '127.0.0.1', port: server.info.port, expectedFingerprint: server.info.fingerprint };
}

export async function register(server: RendezvousServer, user: string, password = TEST_PASSWORD): Promise<void> {
  await registerAccount({ ...trustOf(server), user, password, identity: generateIdentity() });
}

/** A logged-in client with a fresh device key, closed (not logged out) when the test ends. */
export async function login(
  server: RendezvousServer,
  user: string,
  options: Partial<RendezvousClientOptions> & { password?: string } = {},
): Promise<RendezvousClient> {
  const { password = TEST_PASSWORD, ...rest } = options;
  const client = newClient(server, user, rest);
  await client.login(password);
  return client;
}

export function newClient(server: RendezvousServer, user: string, options: Partial<RendezvousClientOptions> = {}): RendezvousClient {
  const identity: Identity = options.identity ?? generateIdentity();
  const client = new RendezvousClient({
    ...trustOf(server),
    user,
    identity,
    backoff: { initialDelayMs: 20, maxDelayMs: 200, jitter: 0.2 },
    ...options,
  });
  client.on('error', () => undefined);
  onTestFinished(() => client.close());
  return client;
}
