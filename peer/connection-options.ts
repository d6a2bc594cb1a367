import { isIP } from 'node:net';
import type { Command } from 'commander';
import { DEFAULTS, SalaError } from '../common/index.js';

/** The connection options `sala register` and `sala chat` share (CONTRACT.md). */
export interface ConnectionOptions {
  server?: string;
  serverKey?: string;
  mdns: boolean;
  data?: string;
  passwordStdin?: boolean;
  passwordFile?: string;
  json?: boolean;
}

export function addConnectionOptions(command: Command): Command {
  return command
    .option('--server <host:port>', 'the rendezvous server (found on the LAN by mDNS when absent)')
    .option('--server-key <fingerprint>', 'the code the server shows (ABCD-EFGH-IJKL-MNOP); dashes and case ignored')
    .option('--no-mdns', 'do not use mDNS; find peers through the server directory only')
    .option('--data <dir>', 'data directory (else SALA_HOME, else the per-OS data directory)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--password-file <file>', 'read the password from the first line of a file')
    .option('--json', 'JSON lines: commands on stdin, events on stdout');
}

/** `host:port`, `[v6]:port` or a bare host (default port). Hosts are IP literals or names. */
export function parseServerAddress(value: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  let host: string;
  let portText: string | undefined;
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const colon = value.lastIndexOf(':');
    host = colon === -1 ? value : value.slice(0, colon);
    portText = colon === -1 ? undefined : value.slice(colon + 1);
  }
  const port = portText === undefined ? DEFAULTS.serverPort : Number(portText);
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65_535 || (portText !== undefined && !/^\d+$/.test(portText))) {
    throw new SalaError('SALA_E_CONFIG_INVALID', `--server must be HOST:PORT (like 192.168.1.10:7420), not "${value.slice(0, 80)}".`);
  }
  return { host, port };
}
