/**
 * Child program for LAN tests of peer links, run inside a host's namespace with
 *   node dist/test/harness/peer-probe.js <role> <args...>
 * Prints JSON lines (`{ "event": ... }`) on stdout; product logs go to stderr. Stops cleanly on
 * SIGTERM or when stdin ends.
 *
 *   dialer <serverHost> <serverPort> <serverFingerprint> <user> <password>
 *     → ready { user, sessionId }
 *     Registers <user> with a fresh device key at the server (given by address: this probe tests
 *     links, not discovery), logs in and holds a real session ticket. Then, for each stdin command
 *       { "cmd": "dial", "host", "port", "expectedUser", "ref" }
 *     it dials that address with the product's link handshake (dialLink), as a peer does when it
 *     means to reach `expectedUser`, and prints
 *     → dial.ok { ref, user, sessionId }       the other side proved it is that user's session
 *     → dial.failed { ref, code, message }     the handshake refused it (e.g. SALA_E_TICKET_INVALID)
 *     A link that succeeds is closed again at once: the probe only reports who answered.
 */
import {
  createLogger,
  generateIdentity,
  initCrypto,
  parseFingerprint,
  toSalaError,
} from '../../common/index.js';
import { dialLink, type LinkCredentials } from '../../peer/links/link-handshake.js';
import { registerAccount, RendezvousClient } from '../../peer/rendezvous/rendezvous-client.js';
import { UsageError, argAt, emit, onStdinCommands, portArg, runProbe, type Fields } from './probe-io.js';

const DIAL_TIMEOUT_MS = 10_000;

function stringField(command: Fields, name: string): string {
  const value = command[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`command field "${name}" must be a non-empty string`);
  return value;
}

async function dialer(argv: readonly string[]): Promise<() => Promise<void>> {
  const host = argAt(argv, 0, 'serverHost');
  const port = portArg(argv, 1, 'serverPort');
  const expectedFingerprint = parseFingerprint(argAt(argv, 2, 'serverFingerprint'));
  const user = argAt(argv, 3, 'user');
  const password = argAt(argv, 4, 'password');
  await initCrypto();
  const identity = generateIdentity();
  const server = { host, port, expectedFingerprint };
  await registerAccount({ ...server, user, password, identity });
  const client = new RendezvousClient({ ...server, user, identity, logger: createLogger({ level: 'info', name: `dialer:${user}` }) });
  const welcome = await client.login(password);
  const signingKey = client.serverSigningKey;
  if (signingKey === undefined) throw new Error('the server did not prove its signing key');
  const credentials: LinkCredentials = {
    identity,
    ticket: () => {
      const ticket = client.ticket;
      if (ticket === undefined) throw new Error('no session ticket');
      return ticket;
    },
    serverSigningKey: signingKey,
    serverNow: () => client.clock.now(),
    isRevoked: () => false,
  };

  const dial = async (command: Fields): Promise<void> => {
    const ref = typeof command['ref'] === 'string' ? command['ref'] : null;
    try {
      const link = await dialLink({
        host: stringField(command, 'host'),
        port: Number(command['port']),
        expectedUser: stringField(command, 'expectedUser'),
        credentials,
        signal: AbortSignal.timeout(DIAL_TIMEOUT_MS),
      });
      link.channel.destroy();
      emit('dial.ok', { ref, user: link.peer.user, sessionId: link.peer.sid });
    } catch (err) {
      const error = toSalaError(err, 'SALA_E_CONNECTION_FAILED', 'dial failed');
      emit('dial.failed', { ref, code: error.code, message: error.message });
    }
  };
  onStdinCommands((command) => {
    if (command['cmd'] === 'dial') void dial(command);
    else emit('warning', { message: `unknown command ${JSON.stringify(command['cmd'])}` });
  });

  let stopping: Promise<void> | undefined;
  const cleanup = (): Promise<void> => (stopping ??= client.logout().catch(() => undefined));
  process.stdin.on('end', () => {
    void cleanup().then(() => process.exit(0));
  });
  emit('ready', { user: welcome.user, sessionId: welcome.sessionId });
  return cleanup;
}

const ROLES: Readonly<Record<string, (argv: readonly string[]) => Promise<() => Promise<void>>>> = { dialer };

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const run = ROLES[role];
  if (run === undefined) throw new UsageError(`unknown role "${role}"; expected one of ${Object.keys(ROLES).join(', ')}`);
  return run(roleArgs);
});
