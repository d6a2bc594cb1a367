/**
 * Child program for LAN tests: multicast and mDNS roles, run inside a host's namespace with
 *   node dist/test/harness/lan-probe.js <role> <args...>
 * Prints JSON lines (`{ "event": ... }`) on stdout; see each role for its events.
 *
 *   mcast-recv <interfaceAddress> <group> <port>          → mcast.ready, mcast.datagram
 *   mcast-send <interfaceAddress> <group> <port> <text>   → mcast.sent, then exits
 *   mdns-publish <interfaceAddress> <name> <port> <txtJson> → mdns.published
 *   mdns-browse <interfaceAddress> <type>                 → mdns.browsing, mdns.up
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { Bonjour } from 'bonjour-service';
import { createBonjour } from '../../common/net/mdns.js';
import { UsageError, argAt, emit, portArg, runProbe } from './probe-io.js';

const MULTICAST_TTL = 1;

function bonjourOn(interfaceAddress: string): Bonjour {
  return createBonjour({
    interfaceAddress,
    onError: (err: unknown) => emit('error', { message: err instanceof Error ? err.message : String(err) }),
  });
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.close(() => {
      resolve();
    });
  });
}

async function multicastReceive(argv: readonly string[]): Promise<() => Promise<void>> {
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const group = argAt(argv, 1, 'group');
  const port = portArg(argv, 2, 'port');
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('error', (err) => {
    emit('warning', { message: err.message });
  });
  socket.on('message', (message, remote) => {
    emit('mcast.datagram', { text: message.toString('utf8'), from: remote.address, fromPort: remote.port });
  });
  // The wildcard address: a socket bound to the unicast address would not see group traffic.
  socket.bind(port, '0.0.0.0');
  await once(socket, 'listening');
  socket.addMembership(group, interfaceAddress);
  emit('mcast.ready', { group, port: socket.address().port, interfaceAddress });
  return () => closeSocket(socket);
}

async function multicastSend(argv: readonly string[]): Promise<() => Promise<void>> {
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const group = argAt(argv, 1, 'group');
  const port = portArg(argv, 2, 'port');
  const text = argAt(argv, 3, 'text');
  const socket = createSocket({ type: 'udp4' });
  socket.on('error', (err) => {
    emit('warning', { message: err.message });
  });
  socket.bind(0, interfaceAddress);
  await once(socket, 'listening');
  // Explicit interface and TTL 1: never rely on the default route to pick the link.
  socket.setMulticastInterface(interfaceAddress);
  socket.setMulticastTTL(MULTICAST_TTL);
  const bytes = await new Promise<number>((resolve, reject) => {
    socket.send(text, port, group, (err, sent) => {
      if (err) reject(err);
      else resolve(sent);
    });
  });
  emit('mcast.sent', { bytes, from: interfaceAddress });
  await closeSocket(socket);
  process.exit(0);
}

async function mdnsPublish(argv: readonly string[]): Promise<() => Promise<void>> {
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const name = argAt(argv, 1, 'name');
  const port = portArg(argv, 2, 'port');
  const txtParsed: unknown = JSON.parse(argAt(argv, 3, 'txtJson'));
  if (typeof txtParsed !== 'object' || txtParsed === null || Array.isArray(txtParsed)) {
    throw new UsageError('<txtJson> must be a JSON object');
  }
  const bonjour = bonjourOn(interfaceAddress);
  // Every namespace shares the machine's hostname; give each host its own so A records differ.
  const service = bonjour.publish({
    name,
    type: 'sala-test',
    port,
    host: `${name}.local`,
    txt: txtParsed as Record<string, unknown>,
  });
  service.on('error', (err: unknown) => {
    emit('error', { message: err instanceof Error ? err.message : String(err) });
  });
  await once(service, 'up');
  emit('mdns.published', { name, port, fqdn: service.fqdn });
  return () =>
    new Promise<void>((resolve) => {
      bonjour.unpublishAll(() => {
        bonjour.destroy(() => {
          resolve();
        });
      });
    });
}

async function mdnsBrowse(argv: readonly string[]): Promise<() => Promise<void>> {
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const type = argAt(argv, 1, 'type');
  const bonjour = bonjourOn(interfaceAddress);
  bonjour.find({ type }, (service) => {
    const txt: unknown = service.txt;
    emit('mdns.up', {
      name: service.name,
      type: service.type,
      protocol: service.protocol,
      host: service.host,
      port: service.port,
      addresses: service.addresses ?? [],
      txt: txt ?? null,
      referer: service.referer?.address ?? null,
    });
  });
  emit('mdns.browsing', { type });
  return () =>
    new Promise<void>((resolve) => {
      bonjour.destroy(() => {
        resolve();
      });
    });
}

const ROLES: Readonly<Record<string, (argv: readonly string[]) => Promise<() => Promise<void>>>> = {
  'mcast-recv': multicastReceive,
  'mcast-send': multicastSend,
  'mdns-publish': mdnsPublish,
  'mdns-browse': mdnsBrowse,
};

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const run = ROLES[role];
  if (run === undefined) throw new UsageError(`unknown role "${role}"; expected one of ${Object.keys(ROLES).join(', ')}`);
  return run(roleArgs);
});
