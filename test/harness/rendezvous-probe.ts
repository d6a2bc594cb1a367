/**
 * Child program for LAN tests of the rendezvous server and its mDNS discovery, run inside a host's
 * namespace with
 *   node dist/test/harness/rendezvous-probe.js <role> <args...>
 * Prints JSON lines (`{ "event": ... }`) on stdout; logs of the product code go to stderr (they show
 * up in a failed wait's message). Both roles stop cleanly on SIGTERM or when stdin ends.
 *
 *   server <dataDir> <hostAddress> [port]
 *     → listening { host, port, fingerprint }
 *     Starts RendezvousServer with mDNS on (announced on <hostAddress>'s interface) and cheap
 *     password hashing; registers nothing itself. Port defaults to 0 (any).
 *   client <user> <password> <expectedFingerprint> <interfaceAddress> [heartbeatMs]
 *     → mdns.browsing { type }
 *     → mdns.ignored { name, fp, host, port, addresses } for each answer whose TXT fp is not the
 *       expected one (also after ready: the browser keeps running)
 *     → mdns.unusable { name } for an answer candidateFrom drops (no name, port or IPv4 address)
 *     → mdns.found { name, fp, host, port, addresses } for the first matching answer, then
 *       connecting { host, port }, registered { user }, and
 *     → ready { user, sessionId, via: "mdns", host, port, serverFingerprint }
 *     → directory { users } for the welcome and after each directory change (sorted, unique,
 *       including this user)
 *     → server.disconnected { sessionId }, server.reconnected { sessionId }, client.failed { code }
 *     → client.log { log, level, ...fields } for the client's `rendezvous.*` log lines (e.g.
 *       rendezvous.reconnect_scheduled, rendezvous.reconnect_failed)
 *     The client has no server address: it only learns it from `_sala-rendezvous._tcp` answers,
 *     read by findServers' candidateFrom. It browses on after connecting (findServers stops at the
 *     first answers) so a test can also see the answers it ignores.
 *     On stdin end it logs out (logout.done) and exits.
 */
import type { Bonjour, Service } from 'bonjour-service';
import {
  createBonjour,
  createLogger,
  generateIdentity,
  initCrypto,
  parseFingerprint,
  RENDEZVOUS_SERVICE_TYPE,
  toSalaError,
  type DirectoryEntry,
  type LogFields,
  type Logger,
} from '../../common/index.js';
import { candidateFrom, type ServerCandidate } from '../../peer/discovery/index.js';
import { registerAccount, RendezvousClient } from '../../peer/rendezvous/rendezvous-client.js';
import { RendezvousServer } from '../../rendezvous/server.js';
import { UsageError, argAt, emit, portArg, runProbe } from './probe-io.js';

/** Cheapest argon2id settings libsodium accepts: registration and login take milliseconds. */
const CHEAP_HASHING = { opslimit: 1, memlimitBytes: 65_536, workers: 1 } as const;

/** Short reconnection delays so a replugged cable is noticed within a test's budget. */
const TEST_BACKOFF = { initialDelayMs: 200, maxDelayMs: 1_000, jitter: 0.25 } as const;

function bonjourOn(interfaceAddress: string): Bonjour {
  return createBonjour({
    interfaceAddress,
    onError: (err: unknown) => emit('mdns.error', { message: err instanceof Error ? err.message : String(err) }),
  });
}

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'UNKNOWN';
}

/** Runs `cleanup` once, whether stdin ends first or runProbe's SIGTERM handler calls it. */
function onceCleanup(cleanup: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= cleanup());
}

/** Stdin closing is the portable "please stop" (JsonChild.stop()). */
function exitOnStdinEnd(cleanup: () => Promise<void>): void {
  process.stdin.on('end', () => {
    cleanup().then(
      () => process.exit(0),
      (err: unknown) => {
        emit('error', { message: err instanceof Error ? err.message : String(err), code: errorCode(err) });
        process.exit(1);
      },
    );
  });
  process.stdin.resume();
}

async function server(argv: readonly string[]): Promise<() => Promise<void>> {
  const dataDir = argAt(argv, 0, 'dataDir');
  const host = argAt(argv, 1, 'hostAddress');
  const port = argv[2] === undefined ? 0 : portArg(argv, 2, 'port');
  const rendezvous = await RendezvousServer.start({
    dataDir,
    host,
    port,
    adminPort: 0,
    isMdnsEnabled: true,
    passwordHashing: CHEAP_HASHING,
    logger: createLogger({ level: 'debug', name: `server@${host}` }),
  });
  const cleanup = onceCleanup(() => rendezvous.close());
  exitOnStdinEnd(cleanup);
  emit('listening', { host: rendezvous.info.host, port: rendezvous.info.port, fingerprint: rendezvous.info.fingerprint });
  return cleanup;
}

/** Largest number of A/AAAA addresses reported in a line (an answer is untrusted, even here). */
const MAX_REPORTED_ADDRESSES = 16;

/** What the probe reports of an answer: findServers' view of it plus the raw address list. */
function reportOf(service: Service, candidate: ServerCandidate): Record<string, unknown> {
  const addresses = Array.isArray(service.addresses) ? service.addresses.slice(0, MAX_REPORTED_ADDRESSES) : [];
  return { name: candidate.name, fp: candidate.fingerprint ?? null, host: candidate.host, port: candidate.port, addresses };
}

async function client(argv: readonly string[]): Promise<() => Promise<void>> {
  const user = argAt(argv, 0, 'user');
  const password = argAt(argv, 1, 'password');
  const expectedFingerprint = parseFingerprint(argAt(argv, 2, 'expectedFingerprint'));
  const interfaceAddress = argAt(argv, 3, 'interfaceAddress');
  const heartbeatText = argv[4];
  const heartbeatIntervalMs = heartbeatText === undefined ? undefined : Number(heartbeatText);
  if (heartbeatIntervalMs !== undefined && !(Number.isInteger(heartbeatIntervalMs) && heartbeatIntervalMs > 0)) {
    throw new UsageError(`[heartbeatMs] must be a positive integer, got ${String(heartbeatText)}`);
  }
  await initCrypto();
  const identity = generateIdentity();
  const stderrLogger = createLogger({ level: 'debug', name: `client:${user}` });
  // The client's own reconnection steps are also events, so a test can wait for a failed attempt.
  const forward =
    (level: keyof Logger) =>
    (event: string, fields: LogFields = {}): void => {
      stderrLogger[level](event, fields);
      if (event.startsWith('rendezvous.')) emit('client.log', { ...fields, level, log: event });
    };
  const logger: Logger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };

  let rendezvous: RendezvousClient | undefined;
  let isConnecting = false;
  const online = new Map<string, string>(); // sessionId → user
  const emitDirectory = (): void => {
    emit('directory', { users: [...new Set(online.values())].sort() });
  };
  const replaceDirectory = (entries: readonly DirectoryEntry[]): void => {
    online.clear();
    for (const entry of entries) online.set(entry.sessionId, entry.user);
    emitDirectory();
  };

  const connect = async (answer: ServerCandidate): Promise<void> => {
    emit('connecting', { host: answer.host, port: answer.port });
    const server = { host: answer.host, port: answer.port, expectedFingerprint };
    const registered = await registerAccount({ ...server, user, password, identity });
    emit('registered', { user: registered.user });
    const created = new RendezvousClient({
      ...server,
      user,
      identity,
      logger,
      backoff: TEST_BACKOFF,
      ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
    });
    rendezvous = created;
    created.on('welcome', (welcome) => replaceDirectory(welcome.directory));
    created.on('directory', (change) => {
      for (const gone of change.offline) online.delete(gone.sessionId);
      for (const entry of change.online) online.set(entry.sessionId, entry.user);
      emitDirectory();
    });
    created.on('server.disconnected', () => emit('server.disconnected', { sessionId: created.sessionId ?? null }));
    created.on('server.reconnected', () => emit('server.reconnected', { sessionId: created.sessionId ?? null }));
    created.on('error', (err) => emit('client.failed', { code: err.code, message: err.message }));
    const welcome = await created.login(password);
    emit('ready', {
      user: welcome.user,
      sessionId: welcome.sessionId,
      via: 'mdns',
      host: answer.host,
      port: answer.port,
      serverFingerprint: created.serverFingerprint ?? null,
    });
  };

  const bonjour = bonjourOn(interfaceAddress);
  bonjour.find({ type: RENDEZVOUS_SERVICE_TYPE }, (service: Service) => {
    const candidate = candidateFrom(service);
    if (candidate === undefined) {
      emit('mdns.unusable', { name: typeof service.name === 'string' ? service.name.slice(0, 64) : null });
      return;
    }
    if (candidate.fingerprint !== expectedFingerprint) {
      emit('mdns.ignored', reportOf(service, candidate));
      return;
    }
    if (isConnecting) return;
    isConnecting = true;
    emit('mdns.found', reportOf(service, candidate));
    connect(candidate).catch((err: unknown) => {
      const error = toSalaError(err, 'SALA_E_CONNECTION_FAILED', 'connect failed');
      emit('error', { message: error.message, code: error.code });
    });
  });
  emit('mdns.browsing', { type: RENDEZVOUS_SERVICE_TYPE });

  const cleanup = onceCleanup(async () => {
    await rendezvous?.logout();
    emit('logout.done', { sessionId: rendezvous?.sessionId ?? null });
    await new Promise<void>((resolve) => {
      bonjour.destroy(() => {
        resolve();
      });
    });
  });
  exitOnStdinEnd(cleanup);
  return cleanup;
}

const ROLES: Readonly<Record<string, (argv: readonly string[]) => Promise<() => Promise<void>>>> = {
  server,
  client,
};

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const run = ROLES[role];
  if (run === undefined) throw new UsageError(`unknown role "${role}"; expected one of ${Object.keys(ROLES).join(', ')}`);
  return run(roleArgs);
});
