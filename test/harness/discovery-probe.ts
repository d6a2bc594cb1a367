/**
 * Child program for LAN tests of peer discovery (`_sala._tcp`), run inside a host's namespace with
 *   node dist/test/harness/discovery-probe.js <user> <fingerprint> <port> <interfaceAddress|->
 * Runs one PeerDiscovery (advertise + browse) pinned to <interfaceAddress>, announcing <port>
 * (nothing needs to listen there: discovery only announces it). An optional 5th argument sets the
 * entry TTL in ms (default PeerDiscovery's 2 minutes). Prints JSON lines:
 *   → discovery.started { serviceName }
 *   → peer.seen { user, fingerprint, addresses: [{host, port}] } (again when addresses are added)
 *   → peer.gone { user, fingerprint }
 *   → warning { message } for PeerDiscovery's warnings (so any wait fails on them)
 *   → peers { peers, browsed, resets } in answer to the stdin command {"cmd":"peers"} (browsed: the
 *     services bonjour's Browser holds; resets: how often it was replaced for holding too many)
 *   → discovery.closed {} on stdin end or SIGTERM, after the goodbye has been sent; then exits 0.
 */
import { PeerDiscovery } from '../../peer/discovery/index.js';
import { createLogger } from '../../common/index.js';
import { UsageError, argAt, emit, onStdinCommands, portArg, runProbe } from './probe-io.js';

runProbe(async () => {
  const argv = process.argv.slice(2);
  const user = argAt(argv, 0, 'user');
  const deviceFingerprint = argAt(argv, 1, 'fingerprint');
  const port = portArg(argv, 2, 'port');
  const pinned = argAt(argv, 3, 'interfaceAddress');
  // '-' runs unpinned: mDNS on every interface, every address announced.
  const interfaceAddress = pinned === '-' ? undefined : pinned;
  const ttlText = argv[4];
  const ttlMs = ttlText === undefined ? undefined : Number(ttlText);
  if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs > 0)) throw new UsageError(`[ttlMs] must be a positive integer, got ${String(ttlText)}`);
  const discovery = new PeerDiscovery({
    user,
    deviceFingerprint,
    port,
    interfaceAddress,
    isMdnsEnabled: true,
    ttlMs,
    logger: createLogger({ level: 'debug', name: `discovery:${user}` }),
  });
  discovery.on('peer.seen', (peer) => emit('peer.seen', { ...peer }));
  discovery.on('peer.gone', (peer) => emit('peer.gone', { ...peer }));
  discovery.on('warning', (warning) => emit('warning', { ...warning }));
  discovery.start();
  emit('discovery.started', { serviceName: discovery.serviceName });

  let closing: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (closing ??= discovery.close().then(() => {
      emit('discovery.closed');
    }));
  onStdinCommands((command) => {
    if (command['cmd'] === 'peers') emit('peers', { peers: discovery.peers(), browsed: discovery.browsedServiceCount, resets: discovery.browserResets });
    else emit('warning', { message: `unknown command ${JSON.stringify(command['cmd'])}` });
  });
  process.stdin.on('end', () => {
    cleanup().then(
      () => process.exit(0),
      (err: unknown) => {
        emit('error', { message: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  });
  return cleanup;
});
