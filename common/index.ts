export * from './errors.js';
export * from './config/index.js';
export * from './wire/index.js';
export * from './crypto/index.js';
export * from './net/index.js';
export * from './log/index.js';
