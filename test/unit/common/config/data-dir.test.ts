import { isAbsolute, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDataDir, type SalaRole } from '../../../../common/config/data-dir.js';

/**
 * resolveDataDir takes env, platform and home as inputs, so every OS is tested here without touching
 * process.env. Expected paths are built with the same `path` module the code uses on this host.
 */
const HOME = resolve('/home/ada');
const ROLES: readonly SalaRole[] = ['peer', 'rendezvous'];

describe('resolveDataDir', () => {
  it('uses the --data flag over SALA_HOME and the OS default', () => {
    const dir = resolveDataDir('peer', { flag: '/srv/sala-data', env: { SALA_HOME: '/opt/sala' }, platform: 'linux', home: HOME });
    expect(dir).toBe(resolve('/srv/sala-data'));
  });

  it('uses the --data flag as given, without a role sub-folder', () => {
    expect(resolveDataDir('rendezvous', { flag: '/srv/sala-data', env: {}, platform: 'linux', home: HOME })).toBe(resolve('/srv/sala-data'));
  });

  it('resolves a relative --data flag against the working directory', () => {
    const dir = resolveDataDir('peer', { flag: 'my-data', env: {}, platform: 'linux', home: HOME });
    expect(isAbsolute(dir)).toBe(true);
    expect(dir).toBe(join(process.cwd(), 'my-data'));
  });

  it('ignores an empty --data flag', () => {
    expect(resolveDataDir('peer', { flag: '', env: { SALA_HOME: '/opt/sala' }, platform: 'linux', home: HOME })).toBe(resolve('/opt/sala'));
  });

  it('treats an undefined --data flag as absent', () => {
    expect(resolveDataDir('peer', { flag: undefined, env: { SALA_HOME: '/opt/sala' }, platform: 'linux', home: HOME })).toBe(resolve('/opt/sala'));
  });

  it('uses SALA_HOME over the OS default when there is no flag', () => {
    const env = { SALA_HOME: '/opt/sala', XDG_DATA_HOME: '/xdg', LOCALAPPDATA: 'C:\\Local' };
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      expect(resolveDataDir('peer', { env, platform, home: HOME })).toBe(resolve('/opt/sala'));
    }
  });

  it('resolves a relative SALA_HOME against the working directory', () => {
    const dir = resolveDataDir('peer', { env: { SALA_HOME: 'rel/sala' }, platform: 'linux', home: HOME });
    expect(dir).toBe(join(process.cwd(), 'rel', 'sala'));
  });

  it('ignores an empty SALA_HOME', () => {
    expect(resolveDataDir('peer', { env: { SALA_HOME: '' }, platform: 'linux', home: HOME })).toBe(join(HOME, '.local', 'share', 'sala', 'peer'));
  });

  for (const role of ROLES) {
    it(`uses LOCALAPPDATA\\Sala\\${role} on Windows`, () => {
      const localAppData = 'C:\\Users\\ada\\AppData\\Local';
      expect(resolveDataDir(role, { env: { LOCALAPPDATA: localAppData, APPDATA: 'C:\\Roaming' }, platform: 'win32', home: HOME })).toBe(
        join(localAppData, 'Sala', role),
      );
    });

    it(`falls back to <home>/AppData/Local/Sala/${role} on Windows without LOCALAPPDATA`, () => {
      expect(resolveDataDir(role, { env: {}, platform: 'win32', home: HOME })).toBe(join(HOME, 'AppData', 'Local', 'Sala', role));
    });

    it(`uses ~/Library/Application Support/Sala/${role} on macOS`, () => {
      expect(resolveDataDir(role, { env: { XDG_DATA_HOME: '/xdg' }, platform: 'darwin', home: HOME })).toBe(
        join(HOME, 'Library', 'Application Support', 'Sala', role),
      );
    });

    it(`uses $XDG_DATA_HOME/sala/${role} on Linux`, () => {
      expect(resolveDataDir(role, { env: { XDG_DATA_HOME: '/xdg/data' }, platform: 'linux', home: HOME })).toBe(join('/xdg/data', 'sala', role));
    });

    it(`falls back to ~/.local/share/sala/${role} on Linux without XDG_DATA_HOME`, () => {
      expect(resolveDataDir(role, { env: {}, platform: 'linux', home: HOME })).toBe(join(HOME, '.local', 'share', 'sala', role));
    });
  }

  it('falls back to ~/.local/share on Linux when XDG_DATA_HOME is empty', () => {
    expect(resolveDataDir('peer', { env: { XDG_DATA_HOME: '' }, platform: 'linux', home: HOME })).toBe(join(HOME, '.local', 'share', 'sala', 'peer'));
  });

  it('uses the XDG layout on other Unix platforms', () => {
    expect(resolveDataDir('peer', { env: {}, platform: 'freebsd', home: HOME })).toBe(join(HOME, '.local', 'share', 'sala', 'peer'));
  });

  it('keeps the peer and rendezvous folders apart by default', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      const input = { env: {}, platform, home: HOME };
      expect(resolveDataDir('peer', input)).not.toBe(resolveDataDir('rendezvous', input));
    }
  });

  it('reads process.env, process.platform and the real home folder when given no input', () => {
    const dir = resolveDataDir('peer');
    expect(isAbsolute(dir)).toBe(true);
  });

  it('ignores an empty LOCALAPPDATA on Windows like an unset one', () => {
    expect(resolveDataDir('peer', { env: { LOCALAPPDATA: '' }, platform: 'win32', home: HOME })).toBe(join(HOME, 'AppData', 'Local', 'Sala', 'peer'));
  });

  // The XDG Base Directory spec: "If an implementation encounters a relative path in any of these
  // variables it should consider the path invalid and ignore it."
  it('ignores a relative XDG_DATA_HOME as the XDG spec requires', () => {
    expect(resolveDataDir('peer', { env: { XDG_DATA_HOME: 'relative/data' }, platform: 'linux', home: HOME })).toBe(
      join(HOME, '.local', 'share', 'sala', 'peer'),
    );
  });
});
