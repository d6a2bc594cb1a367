/**
 * Every default Sala uses, in one frozen place. Change a limit here, not at its use site.
 */

export const PROTOCOL_VERSION = 1;

export const DEFAULTS = Object.freeze({
  /** The rendezvous server's peer protocol port. */
  serverPort: 7420,
  /** The rendezvous server's HTTPS admin API port (bound to 127.0.0.1). */
  adminPort: 7421,

  /**
   * Largest transport frame body (ciphertext) accepted: a 64 KiB text message plus its msgpack
   * envelope fits with room to spare, and a larger cap would only give a peer more of our memory.
   */
  maxFrameBytes: 128 * 1024,
  /** Noise limits every handshake message to 65535 bytes (Noise §3). */
  maxHandshakeMessageBytes: 65_535,
  /** A socket that has not finished the handshake by then is closed (slowloris guard). */
  handshakeTimeoutMs: 10_000,
  /**
   * Both directions rekey (Noise §11.3) after this many frames. Deterministic on both ends, so no
   * signalling is needed; 2^20 frames of 64 KiB is 64 GiB under one key.
   */
  rekeyIntervalFrames: 2 ** 20,
  /** Payload bytes per frame used by bulk writers (file chunks, benchmarks). */
  bulkChunkBytes: 64 * 1024,

  /** Live sessions one account may hold at once (CONTRACT.md: the 4th login is refused). */
  maxSessionsPerUser: 3,
  /** A session whose connection drops is kept this long so the peer can resume it. */
  sessionGraceMs: 60_000,
  /** Session tickets live an hour and are renewed at half-life (SECURITY.md C3). */
  ticketLifetimeMs: 60 * 60_000,
  ticketRenewAfterMs: 30 * 60_000,
  /** Peers ping the server this often; the server drops a connection silent for 3 intervals. */
  heartbeatIntervalMs: 15_000,
  serverIdleTimeoutMs: 45_000,
  /** Directory changes are gathered this long and pushed as one update per session. */
  directoryBatchMs: 25,
  /** Messages per second one session may send the server (sustained) and in a burst. */
  sessionMessagesPerSecond: 50,
  sessionMessageBurst: 400,
  /**
   * Messages per second one direct link may carry towards us (sustained) and in a burst. People
   * type a few messages a second; the headroom is for acks, pings and redelivered outboxes.
   */
  linkMessagesPerSecond: 500,
  linkMessageBurst: 2_000,
  /** Peers ping each other on a link this often; a link silent for 3 intervals is closed. */
  linkHeartbeatIntervalMs: 15_000,
  /** First and longest wait between attempts to reach a peer that has messages waiting for it. */
  peerRedialInitialDelayMs: 1_000,
  peerRedialMaxDelayMs: 10_000,
  /**
   * Activity events one connection may ship to the server's log: 20 a second on average, bursts of
   * 2,000. The server closes a connection that sends more; peers pace themselves below it.
   */
  activityEventsPerSecond: 20,
  activityEventBurst: 2_000,
  /** All open peer connections the server accepts at once. */
  maxServerConnections: 4_000,
  /** Reconnection backoff: first delay, ceiling, and ± jitter fraction. */
  reconnectInitialDelayMs: 500,
  reconnectMaxDelayMs: 30_000,
  reconnectJitter: 0.5,
});

export type Defaults = typeof DEFAULTS;
