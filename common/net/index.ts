export { MessageChannel, type MessageChannelEvents, type PingResult } from './message-channel.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { createBonjour, readTxtString, MAX_TXT_VALUE_CHARS, RENDEZVOUS_SERVICE_TYPE } from './mdns.js';
export { releaseAnnouncedAddresses, restrictAnnouncedAddresses } from './mdns.js';
export { isDialableAddress, isLoopbackHost } from './address.js';
export { guardInbound, type InboundGuard, type InboundGuardOptions } from './inbound-guard.js';
