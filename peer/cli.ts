#!/usr/bin/env node
import { Command } from 'commander';
import { addFingerprintCommand, runCli } from '../common/cli/index.js';
import { packageVersion } from '../common/index.js';
import { DEVICE_KEY_FILE } from './device-identity.js';
import { addChatCommand } from './chat-command.js';
import { addRegisterCommand } from './register-command.js';

const program = new Command('sala')
  .description('Sala: chat and share files with your class or office over the local network.')
  .version(packageVersion())
  .showHelpAfterError();

addChatCommand(program);
addRegisterCommand(program);
addFingerprintCommand(program, 'peer', DEVICE_KEY_FILE, "print this device's key fingerprint (makes the device key on first use)");

runCli(program, process.argv);
