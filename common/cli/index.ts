export { addFingerprintCommand, runCli } from './commands.js';
