export { DEFAULTS, PROTOCOL_VERSION, type Defaults } from './defaults.js';
export { resolveDataDir, type DataDirInput, type SalaRole } from './data-dir.js';
export { packageVersion } from './version.js';
