export { MessageChannel, type MessageChannelEvents, type PingResult } from './message-channel.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { createBonjour } from './mdns.js';
export { releaseAnnouncedAddresses, restrictAnnouncedAddresses } from './mdns.js';
export { isLoopbackHost } from './address.js';
