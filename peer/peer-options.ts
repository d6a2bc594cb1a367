import { homedir } from 'node:os';
import { join } from 'node:path';
import { normalizeUserName, SalaError, type DataDirLockOptions, type Logger } from '../common/index.js';
import type { ChatStatus } from './chat/chat-history.js';
import type { FileEvents } from './files/file-context.js';
import type { GroupTuning } from './groups/group-service-options.js';
import type { ServerAddress } from './rendezvous/rendezvous-client.js';

export interface PeerOptions {
  user: string;
  password: string;
  /** The peer's data dir (device key, pins, history, activity outbox). */
  dataDir: string;
  /** The rendezvous server; found on the LAN by mDNS when absent. */
  server?: ServerAddress | undefined;
  /** `--server-key`: the code the server shows. */
  serverKey?: string | undefined;
  /** Asks a person to type the server's code on a first login (interactive mode only). */
  askForCode?: (() => Promise<string | undefined>) | undefined;
  /** False for `--no-mdns` (also off by itself when everything is on loopback). */
  isMdnsEnabled?: boolean | undefined;
  /** `--interface`: the LAN interface's address, for mDNS and the addresses announced. */
  interfaceAddress?: string | undefined;
  /** Where to accept direct links; all interfaces and an ephemeral port by default. */
  listenHost?: string | undefined;
  listenPort?: number | undefined;
  logger?: Logger | undefined;
  /** Tuning for tests and benchmarks; defaults from common/config. */
  tuning?: PeerTuning | undefined;
  signal?: AbortSignal | undefined;
  /** `--downloads`: where received files go (default: the Downloads folder's `Sala` subfolder). */
  downloadsDir?: string | undefined;
  /** `--accept-files`: accept every offer (still announced with `file.offer`). */
  isAutoAcceptFiles?: boolean | undefined;
  /** Offers above this size are refused (`--max-file-size`); default: no limit but free space. */
  maxFileBytes?: number | undefined;
}

export interface PeerTuning {
  heartbeatIntervalMs?: number;
  linkHeartbeatIntervalMs?: number;
  linkMessagesPerSecond?: number;
  linkMessageBurst?: number;
  reconnectBackoff?: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  redialInitialDelayMs?: number;
  redialMaxDelayMs?: number;
  serverDiscoveryTimeoutMs?: number;
  mdnsTtlMs?: number;
  fileOfferTimeoutMs?: number;
  fileWindowBytes?: number;
  /** Group chat timings and limits (peer/groups/group-service-options.ts). */
  group?: Partial<GroupTuning>;
  /** No multicast socket at all: every group goes over direct links (tests of the fallback). */
  isMulticastDisabled?: boolean;
}

export interface HistoryEntry {
  id: string;
  from: string;
  to: string;
  text: string;
  /** ms since the epoch, the sender's server time. */
  at: number;
  status: ChatStatus;
}

export interface PeerEvents extends FileEvents {
  'peer.online': [{ user: string }];
  'peer.offline': [{ user: string }];
  /** Stored and on its way (`sent`), or waiting for a link to that user (`queued`). */
  sent: [{ id: string; to: string; status: 'queued' | 'sent'; ref?: string }];
  delivered: [{ id: string; to: string }];
  message: [{ id: string; from: string; text: string; at: number }];
  'link.up': [{ user: string; sessionId: string }];
  'link.down': [{ user: string; sessionId: string; code: string | undefined }];
  'group.joined': [{ group: string }];
  'group.left': [{ group: string }];
  /** One of our group messages went out (`ref`: the caller's tag). */
  'group.sent': [{ id: string; group: string; ref?: string }];
  /** Another member's group message, once, in that member's order; `at` in ms, server time. */
  'group.message': [{ id: string; group: string; from: string; text: string; at: number }];
  'server.disconnected': [];
  'server.reconnected': [];
  /** Something went wrong that does not end this peer (a link refused, mDNS trouble). */
  warning: [{ code: string; message: string }];
  /** This peer's session is over (kicked, account disabled, session expired): emitted once, then closed. */
  error: [SalaError];
}

/** How long a send waits for a first link to an online user before queueing the message instead. */
export const FIRST_DIAL_TIMEOUT_MS = 3_000;
/** How long one background attempt to reach a user may take. */
export const REDIAL_TIMEOUT_MS = 15_000;

/** A user name to write to: a valid name that is not our own (SALA_E_UNKNOWN_USER otherwise). */
export function checkedRecipient(to: string): string {
  try {
    return normalizeUserName(to);
  } catch {
    throw new SalaError('SALA_E_UNKNOWN_USER', `"${to.slice(0, 40)}" is not a user name.`);
  }
}

/** An offer not answered within this time is withdrawn (the sender gets SALA_E_TRANSFER_TIMEOUT). */
export const DEFAULT_FILE_OFFER_TIMEOUT_MS = 10 * 60_000;

/** `~/Downloads/Sala` (Windows: `%USERPROFILE%\\Downloads\\Sala`): where people look for what they received. */
export function defaultDownloadsDir(): string {
  return join(homedir(), 'Downloads', 'Sala');
}

/** Where this peer keeps per-user files: one user's history never mixes with another's. */
export function userDir(dataDir: string, user: string): string {
  return join(dataDir, 'users', user);
}

/** One sala per user and data dir: the history and transfer lists must have one writer. */
export function peerLock(user: string): DataDirLockOptions {
  return {
    fileName: `peer-${user}.lock`,
    inUse: (owner: { pid: number } | undefined, dataDir: string) =>
      new SalaError(
        'SALA_E_PEER_RUNNING',
        `Sala is already running for ${user} with the data directory ${dataDir}${owner === undefined ? '' : ` (pid ${owner.pid})`}. ` +
          'Use that window, or quit it first.',
      ),
  };
}
