import { join } from 'node:path';
import type { Command } from 'commander';
import { resolveDataDir, type SalaRole } from '../config/data-dir.js';
import { fingerprint } from '../crypto/fingerprint.js';
import { loadOrCreateIdentity } from '../crypto/key-store.js';
import { initCrypto } from '../crypto/sodium.js';
import { SalaError } from '../errors.js';

/**
 * `fingerprint [--data DIR] [--json]`: prints an identity's fingerprint, making the key on first
 * use. Both programs have it; they differ in which data dir and key file they read.
 */
export function addFingerprintCommand(program: Command, role: SalaRole, keyFile: string, description: string): void {
  program
    .command('fingerprint')
    .description(description)
    .option('--data <dir>', 'data directory (else SALA_HOME, else the per-OS data directory)')
    .option('--json', 'print {"fingerprint": …} as one JSON line')
    .action(async (options: { data?: string; json?: boolean }) => {
      await initCrypto();
      const dataDir = resolveDataDir(role, { flag: options.data });
      const { identity } = loadOrCreateIdentity(join(dataDir, keyFile));
      const fp = fingerprint(identity.signing.publicKey);
      process.stdout.write(options.json === true ? `${JSON.stringify({ fingerprint: fp })}\n` : `${fp}\n`);
    });
}

/** Runs a program; a failure prints `CODE: message` on stderr and sets a non-zero exit code. */
export function runCli(program: Command, argv: readonly string[]): void {
  program.parseAsync([...argv]).catch((err: unknown) => {
    const message = err instanceof SalaError ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`${program.name()}: ${message}\n`);
    process.exitCode = 1;
  });
}
