import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonChild, type JsonLine } from '../../common/process/index.js';
import {
  FILES_EVENT_DONE,
  FILES_EVENT_FAILED,
  FILES_EVENT_PEER,
  isObject,
  type ConnectResult,
  type FilesCommand,
  type MeterResult,
  type PeerEventLine,
  type RawSendResult,
  type SendFileResult,
} from './files-protocol.js';

const PEER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'files-peer-process.js');

interface ResultOf {
  connect: ConnectResult;
  link: object;
  'chat-rtt': { samplesMs: number[] };
  'send-file': SendFileResult;
  'raw-listen': { port: number };
  'raw-send': RawSendResult;
  'meter-start': object;
  'meter-stop': MeterResult;
}

export class FilesChildError extends Error {
  override get name(): string {
    return 'FilesChildError';
  }
}

type EventName = PeerEventLine['name'];
type EventOf<N extends EventName> = Extract<PeerEventLine, { name: N }>;

/** One process of files-peer-process.ts, driven one command at a time; its Peer's events on the side. */
export class FilesChild {
  readonly label: string;
  readonly #child: JsonChild;
  #nextId = 1;

  constructor(label: string, nodeArgs: readonly string[]) {
    this.label = label;
    this.#child = new JsonChild(process.execPath, [...nodeArgs, PEER_SCRIPT], { label: `files peer ${label}` });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exited(): Promise<unknown> {
    return this.#child.exited;
  }

  /** Sends a command and resolves with its result; rejects with the child's message if it failed. */
  async call<C extends FilesCommand>(command: C, timeoutMs: number): Promise<ResultOf[C['cmd']]> {
    const id = this.#nextId++;
    this.#child.send({ ...command, id });
    const line = await this.#child.waitFor(
      (l) => (l['id'] === id || l['id'] === -1) && (l['event'] === FILES_EVENT_DONE || l['event'] === FILES_EVENT_FAILED),
      { timeoutMs, description: `the answer to ${command.cmd} (${id})` },
    );
    if (line['event'] === FILES_EVENT_FAILED) throw new FilesChildError(`${this.label}: ${command.cmd} failed: ${String(line['message'])}`);
    const result = line['result'];
    if (!isObject(result)) throw new FilesChildError(`${this.label}: ${command.cmd} answered without a result`);
    // Our own child program answers; its result shapes are those of files-protocol.ts.
    return result as unknown as ResultOf[C['cmd']];
  }

  /**
   * The next forwarded event `name` (not returned by an earlier wait) that matches. A `file.failed`
   * for the same transfer, or a `warning`, rejects instead: the measurement is broken.
   */
  async next<N extends EventName>(name: N, match: (event: EventOf<N>) => boolean, timeoutMs: number): Promise<EventOf<N>> {
    const line = await this.#child.waitFor(
      (l) => l['event'] === FILES_EVENT_PEER && (l['name'] === 'file.failed' || l['name'] === 'warning' || (l['name'] === name && match(l as unknown as EventOf<N>))),
      { timeoutMs, description: `${name} from ${this.label}` },
    );
    if (line['name'] !== name) throw new FilesChildError(`${this.label}: ${String(line['name'])} ${String(line['code'])}: ${String(line['message'])}`);
    return line as unknown as EventOf<N>;
  }

  /** Every forwarded event `name` seen so far, consumed by a wait or not. */
  seen<N extends EventName>(name: N): EventOf<N>[] {
    return this.#child.lines.filter((l: JsonLine) => l['event'] === FILES_EVENT_PEER && l['name'] === name) as unknown as EventOf<N>[];
  }

  /** The resume case: the process dies at once, as on a crash or a power cut. */
  async killHard(): Promise<void> {
    const pid = this.#child.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    await this.#child.exited;
  }

  /** Closes the child's stdin (it closes its peer and exits); SIGKILL after the deadline. */
  async stop(): Promise<void> {
    await this.#child.stop(10_000);
  }

  kill(): void {
    void this.#child.kill(0);
  }
}
