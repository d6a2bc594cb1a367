import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonChild } from '../../common/process/index.js';
import {
  CHAT_EVENT_DONE,
  CHAT_EVENT_FAILED,
  isObject,
  type ChatCommand,
  type FloodResult,
  type MeterResult,
  type PeerStats,
  type RttResult,
} from './chat-protocol.js';

const PEER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'chat-peer-process.js');

interface ResultOf {
  connect: { rssBytes: number };
  link: object;
  'raw-listen': { port: number };
  'raw-ping': RttResult;
  echo: object;
  rtt: RttResult;
  flood: FloodResult;
  'meter-start': object;
  'meter-stop': MeterResult;
  stats: PeerStats;
}

export class ChatCommandError extends Error {
  override get name(): string {
    return 'ChatCommandError';
  }
}

/** One peer process (chat-peer-process.ts), driven one command at a time. */
export class ChatPeerChild {
  readonly label: string;
  readonly #child: JsonChild;
  #nextId = 1;

  constructor(label: string, nodeArgs: readonly string[]) {
    this.label = label;
    this.#child = new JsonChild(process.execPath, [...nodeArgs, PEER_SCRIPT], { label: `chat peer ${label}` });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends a command and resolves with its result; rejects with the child's message if it failed. */
  async call<C extends ChatCommand>(command: C, timeoutMs: number): Promise<ResultOf[C['cmd']]> {
    const id = this.#nextId++;
    this.#child.send({ ...command, id });
    const line = await this.#child.waitFor(
      (l) => (l['id'] === id || l['id'] === -1) && (l['event'] === CHAT_EVENT_DONE || l['event'] === CHAT_EVENT_FAILED),
      { timeoutMs, description: `the answer to ${command.cmd} (${id})` },
    );
    if (line['event'] === CHAT_EVENT_FAILED) throw new ChatCommandError(`${this.label}: ${command.cmd} failed: ${String(line['message'])}`);
    const result = line['result'];
    if (!isObject(result)) throw new ChatCommandError(`${this.label}: ${command.cmd} answered without a result`);
    // Our own child program answers; its result shapes are those of chat-protocol.ts.
    return result as unknown as ResultOf[C['cmd']];
  }

  /** Closes the child's stdin (it closes its peer and exits); SIGKILL after the deadline. */
  async stop(): Promise<void> {
    await this.#child.stop(5_000);
  }

  kill(): void {
    void this.#child.kill(0);
  }
}
