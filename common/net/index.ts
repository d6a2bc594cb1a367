export { MessageChannel, type MessageChannelEvents, type PingResult } from './message-channel.js';
