import sodiumModule from 'libsodium-wrappers-sumo';

export type Sodium = typeof sodiumModule;

let isReady = false;

/** Resolves once libsodium's WebAssembly is loaded; call before any other crypto function. */
export async function initCrypto(): Promise<void> {
  if (isReady) return;
  await sodiumModule.ready;
  isReady = true;
}

/** The loaded libsodium; throws if initCrypto() has not finished (a programming error). */
export function sodium(): Sodium {
  if (!isReady) throw new Error('libsodium is not ready: await initCrypto() first');
  return sodiumModule;
}
