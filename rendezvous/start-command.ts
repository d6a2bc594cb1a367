import type { Command } from 'commander';
import { createLogger, DEFAULTS, resolveDataDir, SalaError, type Logger } from '../common/index.js';
import { RendezvousServer } from './server.js';

interface StartOptions {
  host: string;
  port: string;
  adminPort: string;
  data?: string;
  mdns: boolean;
  selfRegister: boolean;
  json?: boolean;
}

function parsePort(option: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `Option --${option} must be a port number from 0 to 65535, not "${value}".`);
  }
  return port;
}

/**
 * `sala-rendezvous start`: runs the server until Ctrl+C (SIGINT) or SIGTERM, then shuts down
 * cleanly (database flushed, lock released, sessions kept for the next start). With `--json`,
 * stdout carries only JSON lines, the first being `{"event":"listening",…}`; logs go to stderr.
 */
export function addStartCommand(program: Command): void {
  program
    .command('start')
    .description('run the rendezvous server')
    .option('--host <address>', 'address to listen on for peers (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--port <n>', 'peer protocol port', String(DEFAULTS.serverPort))
    .option('--admin-port <n>', 'HTTPS admin API port (always on 127.0.0.1)', String(DEFAULTS.adminPort))
    .option('--data <dir>', 'data directory (else SALA_HOME, else the per-OS data directory)')
    .option('--no-mdns', 'do not announce the server on the LAN with mDNS')
    .option('--no-self-register', 'only the administrator creates accounts')
    .option('--json', 'JSON lines on stdout (the first is the listening event)')
    .action(async (options: StartOptions) => {
      const dataDir = resolveDataDir('rendezvous', { flag: options.data });
      const logger: Logger = createLogger({ name: 'sala-rendezvous', level: 'info' });
      const server = await RendezvousServer.start({
        dataDir,
        host: options.host,
        port: parsePort('port', options.port),
        adminPort: parsePort('admin-port', options.adminPort),
        isMdnsEnabled: options.mdns,
        isSelfRegistrationOpen: options.selfRegister,
        logger,
      });
      const { info } = server;
      // Listen for Ctrl+C before saying "listening": whoever reads that line may stop us at once.
      const stopRequested = waitForStopSignal();
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify({ event: 'listening', host: info.host, port: info.port, adminPort: info.adminPort, fingerprint: info.fingerprint })}\n`);
      } else {
        process.stdout.write(
          `Sala rendezvous server listening on ${info.host}:${info.port}\n` +
            `Server key fingerprint: ${info.fingerprint}\n` +
            '  (show this code to the class: each person confirms it at their first login)\n' +
            `Admin API: https://127.0.0.1:${info.adminPort} (token in ${dataDir})\n` +
            'Press Ctrl+C to stop.\n',
        );
      }
      await stopRequested;
      if (options.json !== true) process.stdout.write('Stopping…\n');
      await server.close();
      if (options.json === true) process.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    });
}

/**
 * Resolves on the first request to stop: Ctrl+C (SIGINT), SIGTERM, Ctrl+Break (SIGBREAK, Windows)
 * or the console window closing (SIGHUP; Windows then ends the process about 10 s later).
 */
function waitForStopSignal(): Promise<void> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', ...(process.platform === 'win32' ? (['SIGBREAK'] as const) : [])];
  return new Promise((resolve) => {
    const stop = (): void => {
      for (const signal of signals) process.off(signal, stop);
      resolve();
    };
    for (const signal of signals) process.on(signal, stop);
  });
}
