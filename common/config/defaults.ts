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
});

export type Defaults = typeof DEFAULTS;
