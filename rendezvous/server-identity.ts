/**
 * The rendezvous server's identity file in its data dir: made on first start, kept owner-only, never
 * regenerated when present but unreadable (peers have pinned it; a silent new key would look like
 * an attack to every one of them).
 */
export const SERVER_KEY_FILE = 'server-key.json';
