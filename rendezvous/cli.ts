#!/usr/bin/env node
import { Command } from 'commander';
import { addFingerprintCommand, runCli } from '../common/cli/index.js';
import { packageVersion } from '../common/index.js';
import { addAdminCommands } from './admin/admin-commands.js';
import { SERVER_KEY_FILE } from './server-identity.js';
import { addStartCommand } from './start-command.js';

const program = new Command('sala-rendezvous')
  .description('Sala rendezvous server: accounts, sessions, directory and activity log for a classroom LAN.')
  .version(packageVersion())
  .showHelpAfterError();

addStartCommand(program);
addFingerprintCommand(
  program,
  'rendezvous',
  SERVER_KEY_FILE,
  'print the server key fingerprint (makes the key on first use) for people to confirm at first login',
);
addAdminCommands(program);

runCli(program, process.argv);
