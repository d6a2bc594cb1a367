/** This installation's device keys, in the peer's data dir: owner-only, they never leave the device. */
export const DEVICE_KEY_FILE = 'device-key.json';
