import { normalizeUserName, SalaError } from '../../common/index.js';
import type { HistoryEntry, Peer } from '../peer.js';
import type { PeerInfo } from '../roster.js';
import type { ChatCommand } from './chat-commands.js';

/** What a command answers with, besides the events the Peer emits on its own (sent, delivered…). */
export type CommandAnswer =
  | { kind: 'peers'; peers: PeerInfo[] }
  | { kind: 'history'; with: string; messages: HistoryEntry[] }
  | { kind: 'quit' }
  | { kind: 'none' };

/**
 * Runs one command (JSON line or slash command) against the Peer. Both CLI modes use it, so they
 * behave alike; only their output differs. Failures reject with a SalaError carrying the code.
 */
export async function runChatCommand(peer: Peer, command: ChatCommand): Promise<CommandAnswer> {
  switch (command.cmd) {
    case 'peers':
      return { kind: 'peers', peers: peer.peers() };
    case 'send': {
      // The `sent` event (with the ref and the status) comes from the Peer, before any `delivered`.
      await peer.send(command.to, command.text, { ref: command.ref });
      return { kind: 'none' };
    }
    case 'history':
      return { kind: 'history', with: normalizeUserName(command.with), messages: await peer.history(command.with) };
    case 'quit':
      return { kind: 'quit' };
    case 'sendFile':
      // `file.offered` (with the ref) comes from the Peer once the file is hashed.
      await peer.sendFile(command.to, command.path, { name: command.name, ref: command.ref });
      return { kind: 'none' };
    case 'acceptFile':
      await peer.acceptFile(command.transferId);
      return { kind: 'none' };
    case 'declineFile':
      await peer.declineFile(command.transferId);
      return { kind: 'none' };
    case 'cancelFile':
      await peer.cancelFile(command.transferId);
      return { kind: 'none' };
    case 'join':
      // `group.joined` comes from the Peer once the key is in and the multicast self-test has run.
      await peer.joinGroup(command.group);
      return { kind: 'none' };
    case 'leave':
      peer.leaveGroup(command.group);
      return { kind: 'none' };
    case 'groupSend':
      // `group.sent` (with the ref) comes from the Peer.
      peer.groupSend(command.group, command.text, { ref: command.ref });
      return { kind: 'none' };
    default:
      return assertNever(command);
  }
}

function assertNever(value: never): never {
  throw new SalaError('SALA_E_COMMAND_INVALID', `Unknown command ${JSON.stringify(value)}.`);
}
