import {
  connectSecure,
  fingerprintsEqual,
  isLoopbackHost,
  parseFingerprint,
  SalaError,
  verifyStaticKeyProof,
  type Identity,
} from '../../common/index.js';
import type { ServerPins } from './server-pins.js';
import type { ServerTrust } from './rendezvous-client.js';


/**
 * Learns a server's fingerprint without logging in: the handshake is abandoned after msg 2, so
 * nothing is sent — this is what a person is shown before typing the code to confirm it.
 */
export async function probeServerFingerprint(host: string, port: number, identity: Identity): Promise<string> {
  let seen: string | undefined;
  const stop = new SalaError('SALA_E_ABORTED', 'probe finished');
  try {
    const channel = await connectSecure({
      host,
      port,
      purpose: 'rdv',
      staticKeyPair: identity.dh,
      verifyRemote: ({ payload, remoteStatic }) => {
        seen = verifyStaticKeyProof(payload, remoteStatic).fingerprint;
        throw stop;
      },
    });
    channel.destroy();
  } catch (err) {
    if (err !== stop) {
      if (err instanceof SalaError && err.code === 'SALA_E_CONNECTION_FAILED') {
        throw new SalaError('SALA_E_SERVER_UNREACHABLE', `Cannot reach the Sala server at ${host}:${port}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  if (seen === undefined) throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The server did not prove a key.');
  return seen;
}

export interface TrustDecisionInput {
  host: string;
  port: number;
  pins: ServerPins;
  identity: Identity;
  /** `--server-key`, as typed. */
  serverKey?: string | undefined;
  /**
   * Asks a person to type the code the server shows (interactive mode; the code seen is not shown
   * first, so the person really compares): resolves with what they typed,
   * or undefined when there is nobody to ask (JSON mode).
   */
  askForCode?: (() => Promise<string | undefined>) | undefined;
  /** Which hosts count as loopback (tests replace it to reach the prompt path on 127.0.0.1). */
  isLoopback?: (host: string) => boolean;
}

/**
 * How this login must judge the server's key (SECURITY.md C1): `--server-key` wins; then the pin
 * remembered for this address; a first login to an explicit loopback server needs no confirmation
 * (the demo, tests); otherwise a person must type the code the server shows, and in JSON mode,
 * where nobody can be asked, the login fails with SALA_E_SERVER_KEY_UNVERIFIED.
 */
export async function decideServerTrust(input: TrustDecisionInput): Promise<ServerTrust> {
  if (input.serverKey !== undefined) return { expectedFingerprint: parseFingerprint(input.serverKey) };
  const pinned = input.pins.forAddress(input.host, input.port);
  if (pinned !== undefined) return { expectedFingerprint: pinned };
  if ((input.isLoopback ?? isLoopbackHost)(input.host)) return { isUnpinnedAllowed: true };
  if (input.askForCode === undefined) {
    throw new SalaError(
      'SALA_E_SERVER_KEY_UNVERIFIED',
      `The server at ${input.host}:${input.port} has not been confirmed yet; pass --server-key with the code the server shows.`,
    );
  }
  const shown = await probeServerFingerprint(input.host, input.port, input.identity);
  const typed = await input.askForCode();
  if (typed === undefined) throw new SalaError('SALA_E_SERVER_KEY_UNVERIFIED', 'The server key was not confirmed.');
  let matches: boolean;
  try {
    matches = fingerprintsEqual(typed, shown);
  } catch {
    matches = false;
  }
  if (!matches) {
    throw new SalaError(
      'SALA_E_SERVER_KEY_MISMATCH',
      `The code you typed does not match the key this server proved (${shown}). Do not log in here: ask the teacher.`,
    );
  }
  return { expectedFingerprint: shown };
}
