/**
 * Child program for LAN tests: a hostile mDNS responder that announces hand-made `_sala._tcp`
 * records (any TXT, any addresses, any port), run inside a host's namespace with
 *   node dist/test/harness/mdns-flood-probe.js announce <interfaceAddress> <servicesJson>
 * Prints JSON lines (`{ "event": ... }`) on stdout. Stops cleanly on SIGTERM or when stdin ends.
 *
 * <servicesJson> is an array of
 *   { "name": "bogus-bob",            instance label (≤ 63 bytes)
 *     "port": 9,                      SRV port
 *     "txt": ["u=bob", "fp=…"],       raw TXT strings, each ≤ 255 bytes
 *     "padBytes": 6000,               optional: more TXT strings `pNNN=xxx…` until this many bytes
 *     "addresses": ["0.0.0.0"] }      A/AAAA records of the SRV target, written as given
 * Unlike bonjour-service's publish(), nothing is checked or added: the records are what a buggy or
 * malicious host could send. Each service goes out as one unsolicited response at start, and again
 * whenever a query for `_sala._tcp.local` arrives.
 *
 *   → flood.announced { name, txtBytes, addresses } once per service at start
 *   → flood.answered { query } after answering a query
 */
import { isIPv6 } from 'node:net';
import { createBonjour } from '../../common/net/mdns.js';
import { UsageError, argAt, emit, runProbe } from './probe-io.js';

const SERVICE_TYPE = '_sala._tcp.local';
const TTL_SECONDS = 120;
const MAX_TXT_STRING_BYTES = 255;
const PAD_STRING_BYTES = 250;

interface FloodService {
  readonly name: string;
  readonly port: number;
  readonly txt: readonly string[];
  readonly padBytes: number;
  readonly addresses: readonly string[];
}

interface MdnsRecord {
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  readonly data: unknown;
}

interface MdnsPacket {
  readonly answers: readonly MdnsRecord[];
  readonly additionals: readonly MdnsRecord[];
}

/** The part of multicast-dns (under bonjour-service) this probe drives. */
interface RawMdns {
  respond(packet: MdnsPacket, callback?: (err: unknown) => void): void;
  on(event: 'query', listener: (query: { questions?: readonly { name?: unknown; type?: unknown }[] }) => void): void;
}

function parseServices(text: string): FloodService[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new UsageError('<servicesJson> must be a JSON array');
  return parsed.map((item: unknown, index) => {
    if (typeof item !== 'object' || item === null) throw new UsageError(`service ${index} is not an object`);
    const { name, port, txt, padBytes, addresses } = item as Record<string, unknown>;
    if (typeof name !== 'string' || Buffer.byteLength(name) > 63) throw new UsageError(`service ${index}: name must be a label of ≤ 63 bytes`);
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`service ${index}: bad port`);
    const strings = Array.isArray(txt) ? txt : [];
    if (!strings.every((s): s is string => typeof s === 'string' && Buffer.byteLength(s) <= MAX_TXT_STRING_BYTES)) {
      throw new UsageError(`service ${index}: txt must be strings of ≤ ${MAX_TXT_STRING_BYTES} bytes`);
    }
    const list = Array.isArray(addresses) ? addresses : [];
    if (!list.every((a): a is string => typeof a === 'string')) throw new UsageError(`service ${index}: addresses must be strings`);
    return { name, port, txt: strings, padBytes: typeof padBytes === 'number' ? padBytes : 0, addresses: list };
  });
}

function txtStrings(service: FloodService): Buffer[] {
  const strings = service.txt.map((s) => Buffer.from(s, 'utf8'));
  let total = strings.reduce((sum, s) => sum + s.length + 1, 0);
  for (let i = 0; total < service.padBytes; i += 1) {
    const entry = Buffer.from(`p${String(i).padStart(3, '0')}=`.padEnd(PAD_STRING_BYTES, 'x'), 'utf8');
    strings.push(entry);
    total += entry.length + 1;
  }
  return strings;
}

function packetFor(service: FloodService): { packet: MdnsPacket; txtBytes: number } {
  const fqdn = `${service.name}.${SERVICE_TYPE}`;
  const target = `${service.name}.local`;
  const txt = txtStrings(service);
  return {
    txtBytes: txt.reduce((sum, s) => sum + s.length + 1, 0),
    packet: {
      answers: [{ name: SERVICE_TYPE, type: 'PTR', ttl: TTL_SECONDS, data: fqdn }],
      additionals: [
        { name: fqdn, type: 'SRV', ttl: TTL_SECONDS, data: { port: service.port, target, priority: 0, weight: 0 } },
        { name: fqdn, type: 'TXT', ttl: TTL_SECONDS, data: txt },
        ...service.addresses.map((address) => ({ name: target, type: isIPv6(address) ? 'AAAA' : 'A', ttl: TTL_SECONDS, data: address })),
      ],
    },
  };
}

function respond(mdns: RawMdns, packet: MdnsPacket): Promise<void> {
  return new Promise((resolve, reject) => {
    mdns.respond(packet, (err) => {
      if (err === null || err === undefined) resolve();
      else reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
}

async function announce(argv: readonly string[]): Promise<() => Promise<void>> {
  const interfaceAddress = argAt(argv, 0, 'interfaceAddress');
  const services = parseServices(argAt(argv, 1, 'servicesJson'));
  const bonjour = createBonjour({
    interfaceAddress,
    onError: (err: unknown) => emit('error', { message: err instanceof Error ? err.message : String(err) }),
  });
  const mdns = (bonjour as unknown as { server: { mdns: RawMdns } }).server.mdns;
  const packets = services.map((service) => ({ service, ...packetFor(service) }));

  mdns.on('query', (query) => {
    const asked = (query.questions ?? []).some((q) => typeof q.name === 'string' && q.name.toLowerCase() === SERVICE_TYPE);
    if (!asked) return;
    Promise.all(packets.map(({ packet }) => respond(mdns, packet))).then(
      () => emit('flood.answered', { query: SERVICE_TYPE }),
      (err: unknown) => emit('warning', { message: `answer failed: ${String(err)}` }),
    );
  });
  for (const { service, packet, txtBytes } of packets) {
    await respond(mdns, packet);
    emit('flood.announced', { name: service.name, txtBytes, addresses: service.addresses });
  }
  return () =>
    new Promise<void>((resolve) => {
      bonjour.destroy(() => {
        resolve();
      });
    });
}

const ROLES: Readonly<Record<string, (argv: readonly string[]) => Promise<() => Promise<void>>>> = { announce };

const [role = '', ...roleArgs] = process.argv.slice(2);
runProbe(async () => {
  const run = ROLES[role];
  if (run === undefined) throw new UsageError(`unknown role "${role}"; expected one of ${Object.keys(ROLES).join(', ')}`);
  return run(roleArgs);
});
