import type { Logger } from '../../common/index.js';
import type { PeerLink } from '../links/link-manager.js';

/** The file events of CONTRACT.md, as the Peer emits them (times and ids as on the wire). */
export interface FileEvents {
  'file.offered': [{ transferId: string; to: string; name: string; size: number; ref?: string }];
  'file.offer': [{ transferId: string; from: string; name: string; size: number }];
  'file.progress': [{ transferId: string; bytes: number; total: number }];
  'file.sent': [{ transferId: string; size: number; sha256: string }];
  'file.received': [{ transferId: string; size: number; sha256: string; path: string }];
  'file.declined': [{ transferId: string }];
  'file.failed': [{ transferId: string; code: string; message: string }];
}

/** What the two halves of file transfer need from the peer around them. */
export interface FileContext {
  readonly me: string;
  /** A file in this user's folder of the data dir (transfer records). */
  path(name: string): string;
  linkTo(user: string): PeerLink | undefined;
  /** Asks the peer to reach `user` (a transfer waits for a link). */
  requestLink(user: string): void;
  emit<K extends keyof FileEvents>(event: K, ...args: FileEvents[K]): void;
  /** An activity event for the server's log (metadata only). */
  record(event: string, detail: string): void;
  readonly offerTimeoutMs: number;
  readonly logger: Logger;
}
