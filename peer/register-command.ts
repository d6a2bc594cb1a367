import type { Command } from 'commander';
import { join } from 'node:path';
import { readPassword } from '../common/cli/password-input.js';
import { initCrypto, loadOrCreateIdentity, resolveDataDir, SalaError } from '../common/index.js';
import { addConnectionOptions, parseServerAddress, type ConnectionOptions } from './connection-options.js';
import { DEVICE_KEY_FILE } from './device-identity.js';
import { registerAccount } from './rendezvous/rendezvous-client.js';
import { chooseServer } from './server-selection.js';
import { ServerPins } from './rendezvous/server-pins.js';
import { promptForServerCode } from './prompts.js';

interface RegisterOptions extends ConnectionOptions {
  user: string;
}

/**
 * `sala register --user NAME`: creates an account on the server (when it allows self-registration).
 * The server's key is judged exactly as for a login — the password goes only to a confirmed server.
 */
export function addRegisterCommand(program: Command): void {
  addConnectionOptions(
    program
      .command('register')
      .description('create an account on the rendezvous server (when it allows self-registration)')
      .requiredOption('--user <name>', 'the user name to create (2–32 of a-z, 0-9, _ and -)'),
  ).action(async (options: RegisterOptions) => {
    try {
      const result = await register(options);
      if (options.json === true) process.stdout.write(`${JSON.stringify({ event: 'registered', user: result.user })}\n`);
      else process.stderr.write(`Account "${result.user}" created on the server ${result.fingerprint}.\n`);
    } catch (err) {
      if (options.json === true && err instanceof SalaError) {
        process.stdout.write(`${JSON.stringify({ event: 'error', code: err.code, message: err.message, ...err.details })}\n`);
      }
      throw err;
    }
  });
}

async function register(options: RegisterOptions): Promise<{ user: string; fingerprint: string }> {
  await initCrypto();
  const dataDir = resolveDataDir('peer', { flag: options.data });
  const { identity } = loadOrCreateIdentity(join(dataDir, DEVICE_KEY_FILE));
  const pins = new ServerPins(dataDir);
  const isInteractive = options.json !== true && process.stdin.isTTY;
  const server = await chooseServer({
    server: options.server === undefined ? undefined : parseServerAddress(options.server),
    isMdnsEnabled: options.mdns,
    pins,
    identity,
    serverKey: options.serverKey,
    askForCode: isInteractive ? promptForServerCode : undefined,
  });
  const { host, port } = server;
  const password = await readPassword({
    passwordStdin: options.passwordStdin,
    passwordFile: options.passwordFile,
    prompt: `Choose a password for ${options.user}`,
    confirm: true,
  });
  // Nothing more is read from stdin: an open pipe must not keep the program alive (readFirstLine).
  process.stdin.pause();
  const result = await registerAccount({ ...server, user: options.user, password, identity });
  pins.remember(result.fingerprint, host, port);
  return result;
}
