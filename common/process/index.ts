export { JsonChild, DEFAULT_WAIT_MS, type JsonLine, type ExitStatus, type JsonChildOptions, type WaitOptions, type EventWaitOptions } from './json-child.js';
export { DataDirLock, type DataDirLockOptions } from './data-dir-lock.js';
