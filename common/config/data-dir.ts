import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

export type SalaRole = 'rendezvous' | 'peer';

export interface DataDirInput {
  /** `--data DIR` from the command line, if given. */
  flag?: string | undefined;
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  home?: string;
}

/**
 * Where a program keeps its keys, database and logs: `--data DIR`, else `SALA_HOME`, else the
 * per-OS data directory with one sub-folder per program, so a server and a peer on one laptop never
 * share keys.
 */
export function resolveDataDir(role: SalaRole, input: DataDirInput = {}): string {
  const env = input.env ?? process.env;
  if (input.flag !== undefined && input.flag !== '') return resolve(input.flag);
  const fromEnv = env['SALA_HOME'];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(platformDataRoot(input.platform ?? process.platform, env, input.home ?? homedir()), role);
}

function platformDataRoot(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, home: string): string {
  switch (platform) {
    case 'win32':
      // LOCALAPPDATA, not APPDATA: keys must not roam to other machines with the profile.
      const localAppData = env['LOCALAPPDATA'];
      return join(localAppData !== undefined && localAppData !== '' ? localAppData : join(home, 'AppData', 'Local'), 'Sala');
    case 'darwin':
      return join(home, 'Library', 'Application Support', 'Sala');
    default: {
      // The XDG spec: a relative XDG_DATA_HOME is invalid and must be ignored.
      const xdg = env['XDG_DATA_HOME'];
      return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(home, '.local', 'share'), 'sala');
    }
  }
}
