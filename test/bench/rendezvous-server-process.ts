/**
 * The rendezvous server under load, in its own process so that its RSS and event loop are its own.
 * Usage: node dist/test/bench/rendezvous-server-process.js DATA_DIR USERS HASHING(real|cheap)
 * Seeds USERS accounts (bench0…) with one precomputed hash, starts the server on 127.0.0.1:0
 * with caps raised for a load from one address, and prints JSON lines:
 *   {"event":"listening", port, fingerprint}
 * then answers stdin commands: {"cmd":"stats"} → {"event":"stats", rssBytes, loopP50Ms, loopP99Ms,
 * sessions}; {"cmd":"reset-loop"} clears the event-loop histogram. Exits when stdin ends.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { initCrypto } from '../../common/index.js';
import { PasswordHasher } from '../../rendezvous/auth/password-hasher.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { openNedbStore } from '../../rendezvous/store/nedb-store.js';

export const BENCH_PASSWORD = 'bench password 1';
export const CHEAP_HASHING = Object.freeze({ opslimit: 1, memlimitBytes: 8 * 1024, workers: 2 });

const emit = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

async function main(): Promise<void> {
  const [dataDir, usersText, hashing] = process.argv.slice(2);
  if (dataDir === undefined || usersText === undefined || (hashing !== 'real' && hashing !== 'cheap')) {
    throw new Error('usage: rendezvous-server-process DATA_DIR USERS real|cheap');
  }
  await initCrypto();
  const passwordHashing = hashing === 'real' ? {} : CHEAP_HASHING;
  // Seed the accounts directly: registering them through the server would spend one argon2 hash each.
  const hasher = new PasswordHasher(passwordHashing);
  const hash = await hasher.hash(BENCH_PASSWORD);
  await hasher.close();
  const store = await openNedbStore(dataDir);
  const at = new Date().toISOString();
  for (let i = 0; i < Number(usersText); i++) {
    await store.users.create({ name: `bench${i}`, passwordHash: hash, isDisabled: false, createdAt: at, passwordChangedAt: at });
  }
  await store.close();

  const server = await RendezvousServer.start({
    dataDir,
    port: 0,
    adminPort: 0,
    isMdnsEnabled: false,
    passwordHashing,
    limits: { maxConnectionsPerIp: 5_000, maxConnections: 5_000 },
  });
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  emit({ event: 'listening', port: server.info.port, fingerprint: server.info.fingerprint });

  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const command = JSON.parse(line) as { cmd?: string };
    if (command.cmd === 'reset-loop') {
      loop.reset();
      emit({ event: 'loop-reset' });
    } else if (command.cmd === 'stats') {
      emit({
        event: 'stats',
        rssBytes: process.memoryUsage().rss,
        loopP50Ms: loop.percentile(50) / 1e6,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        sessions: server.sessions.size,
      });
    }
  });
  commands.on('close', () => {
    loop.disable();
    void server.close().then(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`rendezvous-server-process: ${String(err)}\n`);
  process.exit(1);
});
