import { normalizeUserName, toSalaError, type SalaError } from '../../common/index.js';
import { onStopSignals } from '../chat-command.js';
import type { HistoryEntry, Peer } from '../peer.js';
import type { PeerInfo } from '../roster.js';
import { HELP_TEXT, parseSlashCommand } from './chat-commands.js';
import { ChatTerminal } from './chat-terminal.js';
import { formatEta, formatRate } from './terminal-format.js';
import { runChatCommand } from './command-runner.js';
import { formatBytes } from '../byte-size.js';

/**
 * The interactive chat: a prompt with the slash commands of CONTRACT.md, and everything that
 * happens printed above it without breaking the line being typed. After `/msg bob …`, plain lines
 * go to bob too (the prompt shows it). Ctrl+C, Ctrl+D and /quit log out; resolves with the exit code.
 */
export async function runInteractive(peer: Peer): Promise<number> {
  const terminal = new ChatTerminal({ prompt: `${peer.user}>` });
  /** Where plain lines go: the last /msg user or /g group. */
  let talkingTo: { user: string } | { group: string } | undefined;
  let exitCode = 0;

  terminal.print(
    `Logged in as ${peer.user} (server ${peer.serverFingerprint}); accepting direct links on ${peer.listen.host}:${peer.listen.port}.\n` +
      'Type /help for the commands, /msg USER TEXT to write to someone, /quit to leave.',
    'info',
  );
  const online = peer.peers().filter((p) => p.online);
  terminal.print(online.length === 0 ? 'Nobody else is online yet.' : `Online: ${online.map((p) => p.user).join(', ')}`, 'muted');

  peer.on('peer.online', ({ user }) => terminal.print(`* ${user} is online`, 'muted'));
  peer.on('peer.offline', ({ user }) => terminal.print(`* ${user} went offline`, 'muted'));
  peer.on('message', (m) => terminal.print(`[${clock(m.at)}] ${m.from}: ${m.text}`));
  peer.on('sent', ({ to, status }) => {
    if (status === 'queued') terminal.print(`  (${to} is not reachable right now; the message waits and goes when they are back)`, 'muted');
  });
  peer.on('delivered', ({ to }) => terminal.print(`  ✓ delivered to ${to}`, 'success'));
  peer.on('group.joined', ({ group }) => terminal.print(`* you joined #${group}; write to it with /g ${group} TEXT`, 'info'));
  peer.on('group.left', ({ group }) => terminal.print(`* you left #${group}`, 'muted'));
  peer.on('group.message', (m) => terminal.print(`[${clock(m.at)}] #${m.group} ${m.from}: ${m.text}`));
  peer.on('server.disconnected', () => terminal.print('Lost the connection to the server; reconnecting. Chats with linked peers go on.', 'warning'));
  peer.on('server.reconnected', () => terminal.print('Connected to the server again.', 'info'));
  peer.on('warning', ({ message }) => terminal.print(message, 'warning'));
  const names = new Map<string, string>(); // transfer id → file name, for the progress bars
  peer.on('file.offered', ({ transferId, to, name, size }) => {
    names.set(transferId, name);
    terminal.print(`  offered ${name} (${formatBytes(size)}) to ${to}; waiting for them to accept [${short(transferId)}]`, 'muted');
  });
  peer.on('file.offer', ({ transferId, from, name, size }) => {
    names.set(transferId, name);
    terminal.print(`${from} offers you ${name} (${formatBytes(size)}): /accept ${short(transferId)} or /decline ${short(transferId)}`, 'info');
  });
  const rates = new Map<string, { atMs: number; bytes: number }>(); // where each transfer's rate is measured from
  peer.on('file.progress', ({ transferId, bytes, total }) => {
    const nowMs = performance.now();
    const start = rates.get(transferId) ?? { atMs: nowMs, bytes };
    rates.set(transferId, start);
    const perSecond = ((bytes - start.bytes) * 1000) / Math.max(1, nowMs - start.atMs);
    const label = `${names.get(transferId) ?? transferId.slice(0, 8)} ${formatRate(perSecond)} ETA ${formatEta((total - bytes) / perSecond)}`;
    terminal.progress(transferId, bytes, total, label);
  });
  peer.on('file.sent', ({ transferId, size }) => {
    terminal.endProgress(transferId);
    terminal.print(`  ✓ ${names.get(transferId) ?? transferId} delivered (${formatBytes(size)}, checked)`, 'success');
  });
  peer.on('file.received', ({ transferId, path, sha256 }) => {
    terminal.endProgress(transferId);
    terminal.print(`  ✓ received ${path} (SHA-256 ${sha256.slice(0, 16)}…, checked)`, 'success');
  });
  peer.on('file.declined', ({ transferId }) => terminal.print(`  ${names.get(transferId) ?? transferId} was declined`, 'warning'));
  peer.on('file.failed', ({ transferId, code, message }) => {
    terminal.endProgress(transferId);
    terminal.print(`  ${names.get(transferId) ?? transferId}: ${code}: ${message}`, 'error');
  });
  peer.once('error', (error: SalaError) => {
    exitCode = 1;
    terminal.print(`${error.code}: ${error.message}`, 'error');
    terminal.close();
  });
  onStopSignals(() => terminal.close());

  for await (const line of terminal.lines()) {
    let command;
    try {
      command = parseSlashCommand(line, talkingTo === undefined ? {} : 'user' in talkingTo ? { defaultTo: talkingTo.user } : { defaultGroup: talkingTo.group });
    } catch (err) {
      terminal.print(toSalaError(err, 'SALA_E_COMMAND_INVALID', 'That command could not be read.').message, 'error');
      continue;
    }
    if (command === undefined) continue;
    if (command.cmd === 'help') {
      terminal.print(HELP_TEXT, 'info');
      continue;
    }
    if (command.cmd === 'quit') break;
    try {
      const answer = await runChatCommand(peer, command);
      if (command.cmd === 'send') {
        talkingTo = { user: normalizeUserName(command.to) };
        terminal.setPrompt(`${peer.user}→${talkingTo.user}>`);
      } else if (command.cmd === 'groupSend') {
        talkingTo = { group: normalizeUserName(command.group) };
        terminal.setPrompt(`${peer.user}→#${talkingTo.group}>`);
      } else if (command.cmd === 'leave' && talkingTo !== undefined && 'group' in talkingTo && talkingTo.group === normalizeUserName(command.group)) {
        talkingTo = undefined;
        terminal.setPrompt(`${peer.user}>`);
      }
      if (answer.kind === 'peers') terminal.print(formatPeers(answer.peers));
      else if (answer.kind === 'history') terminal.print(formatHistory(answer.with, answer.messages));
    } catch (err) {
      const error = toSalaError(err, 'SALA_E_COMMAND_INVALID', 'The command failed.');
      terminal.print(`${error.code}: ${error.message}`, 'error');
    }
  }
  terminal.close();
  if (exitCode === 0) {
    process.stderr.write('Logging out…\n');
    await peer.quit();
  } else {
    await peer.close();
  }
  return exitCode;
}

function short(transferId: string): string {
  return transferId.slice(0, 8);
}

function clock(atMs: number): string {
  return new Date(atMs).toTimeString().slice(0, 5);
}

export function formatPeers(peers: readonly PeerInfo[]): string {
  if (peers.length === 0) return 'No other users known yet.';
  return peers
    .map((p) => `  ${p.online ? '●' : '○'} ${p.user.padEnd(20)} ${p.online ? `online via ${p.via.join(' + ')}` : 'offline'}${p.addresses.length > 0 ? `  ${p.addresses.join(', ')}` : ''}`)
    .join('\n');
}

export function formatHistory(withUser: string, messages: readonly HistoryEntry[]): string {
  if (messages.length === 0) return `No messages with ${withUser} yet.`;
  const lines = messages.map((m) => {
    const mark = m.status === 'delivered' ? ' ✓' : m.status === 'queued' || m.status === 'sent' ? ' (not delivered yet)' : '';
    return `  [${new Date(m.at).toISOString().slice(0, 16).replace('T', ' ')}] ${m.from}: ${m.text}${mark}`;
  });
  return [`History with ${withUser}:`, ...lines].join('\n');
}
