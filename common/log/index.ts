export { createLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './logger.js';
