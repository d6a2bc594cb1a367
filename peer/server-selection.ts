import { fingerprintsEqual, parseFingerprint, SalaError, type Identity, type Logger } from '../common/index.js';
import { findServers, type ServerCandidate } from './discovery/server-finder.js';
import type { ServerAddress, ServerTrust } from './rendezvous/rendezvous-client.js';
import type { ServerPins } from './rendezvous/server-pins.js';
import { decideServerTrust } from './rendezvous/server-trust.js';

export interface ChooseServerInput extends LocateServerInput {
  /** `--server`, parsed; found by mDNS when absent. */
  server?: ServerAddress | undefined;
  /** False for `--no-mdns`. */
  isMdnsEnabled?: boolean | undefined;
  identity: Identity;
}

/** Which server to log in (or register) at and how to judge its key, for `sala chat` and `sala register`. */
export async function chooseServer(input: ChooseServerInput): Promise<ServerAddress & ServerTrust> {
  if (input.server !== undefined) {
    const { host, port } = input.server;
    const trust = await decideServerTrust({ host, port, pins: input.pins, identity: input.identity, serverKey: input.serverKey, askForCode: input.askForCode });
    return { host, port, ...trust };
  }
  if (input.isMdnsEnabled === false) {
    throw new SalaError('SALA_E_CONFIG_INVALID', 'With --no-mdns the server cannot be found on the LAN: give it with --server HOST:PORT.');
  }
  return locateServer(input);
}

export interface LocateServerInput {
  pins: ServerPins;
  /** `--server-key`, as typed. */
  serverKey?: string | undefined;
  interfaceAddress?: string | undefined;
  /** Asks a person for the code the server shows; undefined in JSON mode. */
  askForCode?: (() => Promise<string | undefined>) | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
}

/**
 * Finds the rendezvous server on the LAN by mDNS (`_sala-rendezvous._tcp`) and decides how its key
 * is judged. An mDNS answer is only a hint: the fingerprint in its TXT record chooses among answers,
 * and the login handshake then insists that the server proves exactly that key. So:
 *   - with `--server-key`, only a server announcing that key is taken;
 *   - else a server whose key this device pinned before is taken;
 *   - else a person types the code the teacher shows and the server announcing it is taken (several
 *     servers on one LAN are told apart that way); in JSON mode, with nobody to ask, the login
 *     fails with SALA_E_SERVER_KEY_UNVERIFIED naming what was found.
 */
export async function locateServer(input: LocateServerInput): Promise<ServerAddress & ServerTrust> {
  const wanted = input.serverKey === undefined ? undefined : parseFingerprint(input.serverKey);
  const pinned = new Set(input.pins.all());
  const common = {
    ...(input.interfaceAddress === undefined ? {} : { interfaceAddress: input.interfaceAddress }),
    ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
    ...(input.signal === undefined ? {} : { signal: input.signal }),
    ...(input.logger === undefined ? {} : { logger: input.logger }),
  };

  if (wanted !== undefined) {
    const [server] = await findServers({ ...common, isWanted: (c) => c.fingerprint === wanted });
    return chosen(server, wanted);
  }
  const candidates = await findServers({ ...common, isWanted: (c) => c.fingerprint !== undefined });
  const known = candidates.find((c) => c.fingerprint !== undefined && pinned.has(c.fingerprint));
  if (known?.fingerprint !== undefined) return chosen(known, known.fingerprint);

  const found = candidates.map((c) => `${c.fingerprint ?? '?'} at ${c.host}:${c.port}`).join(', ');
  if (input.askForCode === undefined) {
    throw new SalaError(
      'SALA_E_SERVER_KEY_UNVERIFIED',
      `Found a Sala server on the LAN (${found}) whose key has not been confirmed; pass --server-key with the code the server shows.`,
    );
  }
  const typed = await input.askForCode();
  if (typed === undefined) throw new SalaError('SALA_E_SERVER_KEY_UNVERIFIED', 'The server key was not confirmed.');
  const match = candidates.find((c) => c.fingerprint !== undefined && matches(typed, c.fingerprint));
  if (match?.fingerprint === undefined) {
    throw new SalaError(
      'SALA_E_SERVER_KEY_MISMATCH',
      `No server on the LAN announces the code you typed (found: ${found}). Check the code the teacher shows and try again.`,
    );
  }
  return chosen(match, match.fingerprint);
}

function chosen(candidate: ServerCandidate | undefined, fingerprint: string): ServerAddress & ServerTrust {
  if (candidate === undefined) throw new SalaError('SALA_E_SERVER_UNREACHABLE', 'No Sala server with that key answered on the LAN.');
  return { host: candidate.host, port: candidate.port, expectedFingerprint: fingerprint };
}

function matches(typed: string, fingerprint: string): boolean {
  try {
    return fingerprintsEqual(typed, fingerprint);
  } catch {
    return false;
  }
}
