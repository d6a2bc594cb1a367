import { isIPv4 } from 'node:net';
import type { Service } from 'bonjour-service';
import {
  createBonjour,
  isDialableAddress,
  parseFingerprint,
  readTxtString,
  RENDEZVOUS_SERVICE_TYPE,
  SalaError,
  silentLogger,
  type Logger,
} from '../../common/index.js';
import type { RawService } from './discovery-records.js';

/**
 * Finds the rendezvous server by its `_sala-rendezvous._tcp` announcement. Answers are untrusted
 * hints (SECURITY.md C1, H5): anyone on the LAN can announce one, so the caller dials each
 * candidate and the handshake checks the server's key. Here we only keep the answers bounded and
 * well-formed.
 */

export const DEFAULT_FIND_SERVER_TIMEOUT_MS = 5_000;
export const DEFAULT_FIND_SERVER_SETTLE_MS = 500;
/** More servers than this on one LAN is a flood, not a classroom; the rest are ignored. */
export const MAX_SERVER_CANDIDATES = 16;
/** A DNS label is at most 63 bytes (RFC 1035 §2.3.4), so a longer instance name is not from the wire. */
const MAX_INSTANCE_NAME_CHARS = 63;
/** RFC 6762 §5.2: at least 1 s between the first two queries, then at least doubling. */
const FIRST_REQUERY_MS = 1_000;

export interface ServerCandidate {
  /** mDNS instance name, control and format characters replaced by U+FFFD (it may be printed). */
  readonly name: string;
  /** An IPv4 literal to dial: the service's A record, else the responder's address (referer). */
  readonly host: string;
  readonly port: number;
  /** Canonical fingerprint from TXT `fp`, or undefined when missing or invalid. */
  readonly fingerprint: string | undefined;
}

export interface FindServerOptions {
  /** Pins mDNS to this interface; without it every interface is used. */
  readonly interfaceAddress?: string | undefined;
  /** How long to browse; default 5 s. findServers never takes longer than this. */
  readonly timeoutMs?: number | undefined;
  /**
   * After the first acceptable answer, keep collecting for this long so several servers can be
   * compared; default 500 ms (cut short by timeoutMs).
   */
  readonly settleMs?: number | undefined;
  /** Answers for which this returns false are ignored (e.g. not the expected fingerprint). */
  readonly isWanted?: ((candidate: ServerCandidate) => boolean) | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly logger?: Logger | undefined;
}

/** The fields of a bonjour-service Service read here; all `unknown` because they come off the wire. */
export interface RawServerAnswer extends RawService {
  readonly name?: unknown;
}

/** Only unicast addresses another host can be reached at: not 0/8, loopback, multicast or reserved. */
function isDialableIPv4(address: unknown): address is string {
  return isDialableAddress(address) && isIPv4(address);
}

function hostOf(raw: RawServerAnswer): string | undefined {
  const listed: unknown[] = Array.isArray(raw.addresses) ? (raw.addresses as unknown[]) : [];
  const address = listed.find(isDialableIPv4);
  if (address !== undefined) return address;
  // No usable A record (only AAAA, or none in the packet): the packet's source is the next best hint.
  const referer = raw.referer;
  if (typeof referer !== 'object' || referer === null || !('address' in referer)) return undefined;
  const source: unknown = referer.address;
  return isDialableIPv4(source) ? source : undefined;
}

function fingerprintOf(txt: unknown): string | undefined {
  const fp = readTxtString(txt, 'fp');
  if (fp === undefined) return undefined;
  try {
    return parseFingerprint(fp);
  } catch {
    return undefined;
  }
}

/**
 * Turns one untrusted `_sala-rendezvous._tcp` answer into a candidate to dial, or undefined when
 * it has no usable name, port or IPv4 address. Never throws. A missing or malformed fingerprint
 * does not drop the answer: a caller without a pin can still dial it and learn the key.
 */
export function candidateFrom(raw: RawServerAnswer): ServerCandidate | undefined {
  const { name, port } = raw;
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_INSTANCE_NAME_CHARS) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  const host = hostOf(raw);
  if (host === undefined) return undefined;
  return { name: name.replace(/[\p{Cc}\p{Cf}]/gu, '\uFFFD'), host, port, fingerprint: fingerprintOf(raw.txt) };
}

function durationOption(value: number | undefined, name: string, fallback: number, minimumMs: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < minimumMs) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `${name} must be an integer of milliseconds ≥ ${minimumMs}, got ${String(value)}.`);
  }
  return value;
}

/** Log lines carry the first two groups of the fingerprint, like every short id. */
function shortId(candidate: ServerCandidate): string | null {
  return candidate.fingerprint?.slice(0, 9) ?? null;
}

function keyOf(candidate: ServerCandidate): string {
  return `${candidate.fingerprint ?? '-'}|${candidate.host}|${candidate.port}`;
}

function abortedError(): SalaError {
  return new SalaError('SALA_E_ABORTED', 'Looking for the Sala server on the LAN was cancelled.');
}

/**
 * Browses for the rendezvous server. Resolves with every distinct wanted candidate seen
 * (deduplicated by fingerprint, host and port; at most MAX_SERVER_CANDIDATES), first seen first,
 * `settleMs` after the first one or at `timeoutMs`, whichever comes first. Rejects with
 * SALA_E_SERVER_UNREACHABLE when no wanted answer came within `timeoutMs`, SALA_E_ABORTED on
 * abort, SALA_E_CONFIG_INVALID for a bad option. Its mDNS socket is closed before it settles.
 */
export async function findServers(options: FindServerOptions): Promise<ServerCandidate[]> {
  const timeoutMs = durationOption(options.timeoutMs, 'timeoutMs', DEFAULT_FIND_SERVER_TIMEOUT_MS, 1);
  const settleMs = durationOption(options.settleMs, 'settleMs', DEFAULT_FIND_SERVER_SETTLE_MS, 0);
  const { signal, isWanted } = options;
  const logger = options.logger ?? silentLogger;
  if (signal?.aborted === true) throw abortedError();

  const bonjour = createBonjour({
    interfaceAddress: options.interfaceAddress,
    onError: (err) => logger.warn('discovery.mdns_error', { message: err instanceof Error ? err.message : String(err) }),
  });
  const candidates: ServerCandidate[] = [];
  const seen = new Set<string>();
  let outcome: { readonly candidates: ServerCandidate[] } | { readonly error: unknown } | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  let requeryTimer: NodeJS.Timeout | undefined;

  return new Promise<ServerCandidate[]>((resolve, reject) => {
    const finish = (result: NonNullable<typeof outcome>): void => {
      if (outcome !== undefined) return;
      outcome = result;
      clearTimeout(deadline);
      clearTimeout(settleTimer);
      clearTimeout(requeryTimer);
      signal?.removeEventListener('abort', onAbort);
      browser.stop();
      bonjour.destroy(() => {
        if ('error' in result) reject(result.error);
        else resolve(result.candidates);
      });
    };
    const onAbort = (): void => finish({ error: abortedError() });
    const onTimeout = (): void => {
      if (candidates.length > 0) {
        finish({ candidates });
        return;
      }
      const seconds = Math.round(timeoutMs / 100) / 10;
      finish({
        error: new SalaError(
          'SALA_E_SERVER_UNREACHABLE',
          `No Sala server answered on the LAN within ${seconds} s; give its address with --server HOST:PORT.`,
        ),
      });
    };
    const onAnswer = (service: Service): void => {
      if (outcome !== undefined || candidates.length >= MAX_SERVER_CANDIDATES) return;
      const candidate = candidateFrom(service);
      if (candidate === undefined) {
        logger.debug('discovery.server_answer_unusable', {});
        return;
      }
      const key = keyOf(candidate);
      if (seen.has(key)) return;
      let isAccepted: boolean;
      try {
        isAccepted = isWanted?.(candidate) ?? true;
      } catch (err) {
        finish({ error: err });
        return;
      }
      if (!isAccepted) {
        logger.debug('discovery.server_ignored', { host: candidate.host, port: candidate.port, server: shortId(candidate) });
        return;
      }
      seen.add(key);
      candidates.push(candidate);
      logger.debug('discovery.server_found', { host: candidate.host, port: candidate.port, server: shortId(candidate) });
      if (candidates.length >= MAX_SERVER_CANDIDATES) finish({ candidates });
      else settleTimer ??= setTimeout(() => finish({ candidates }), settleMs);
    };

    const deadline = setTimeout(onTimeout, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    // The Browser sends the first query itself; a lost query or a server that starts meanwhile is
    // caught by asking again, backing off as RFC 6762 §5.2 asks.
    const requery = (delayMs: number): void => {
      requeryTimer = setTimeout(() => {
        browser.update();
        requery(delayMs * 2);
      }, delayMs);
    };
    const browser = bonjour.find({ type: RENDEZVOUS_SERVICE_TYPE });
    browser.on('up', onAnswer);
    browser.on('srv-update', onAnswer);
    browser.on('txt-update', onAnswer);
    requery(FIRST_REQUERY_MS);
  });
}
