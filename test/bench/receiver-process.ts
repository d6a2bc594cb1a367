import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonChild, type JsonLine } from '../../common/process/index.js';
import { EVENT_DONE, EVENT_FAILED, EVENT_LISTENING, parseStats, type ReceiverStats, type ReceiverTask } from './protocol.js';

const RECEIVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'receiver.js');
const LISTEN_TIMEOUT_MS = 10_000;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
export type TaskInput = WithoutId<ReceiverTask>;

export class ReceiverFailedError extends Error {
  override get name(): string {
    return 'ReceiverFailedError';
  }
}

/** The receiver child process (receiver.ts), driven one task at a time over JSON lines. */
export class ReceiverProcess {
  // The parent's node flags pass on, so `node --cpu-prof dist/test/bench/run.js` profiles both sides.
  readonly #child = new JsonChild(process.execPath, [...process.execArgv, RECEIVER_SCRIPT], { label: 'bench receiver' });
  #nextId = 1;

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /**
   * Hands the receiver a task and resolves with the port it listens on. `finished(timeoutMs)` then
   * resolves with the receiver's own measurements, or rejects if it reported a failure or exited.
   */
  async begin(task: TaskInput): Promise<{ port: number; finished: (timeoutMs: number) => Promise<ReceiverStats> }> {
    const id = this.#nextId++;
    this.#child.send({ ...task, id });
    const listening = await this.#waitFor(id, EVENT_LISTENING, LISTEN_TIMEOUT_MS);
    const port = listening['port'];
    if (typeof port !== 'number' || !Number.isInteger(port)) throw new ReceiverFailedError('the receiver reported no port');
    return { port, finished: async (timeoutMs) => parseStats(await this.#waitFor(id, EVENT_DONE, timeoutMs)) };
  }

  /** Closes the receiver's stdin, which makes it exit; SIGKILL after the deadline. */
  async stop(): Promise<void> {
    await this.#child.stop(3_000);
  }

  /** Last resort on Ctrl+C: the child's stdin closes with us anyway, but do not wait for it. */
  kill(): void {
    void this.#child.kill(0);
  }

  async #waitFor(id: number, event: string, timeoutMs: number): Promise<JsonLine> {
    const line = await this.#child.waitFor(
      (l) => (l['id'] === id || l['id'] === -1) && (l['event'] === event || l['event'] === EVENT_FAILED),
      { timeoutMs, description: `${event} for task ${id}` },
    );
    if (line['event'] === EVENT_FAILED) {
      throw new ReceiverFailedError(`the receiver failed task ${id}: ${String(line['message'])}`);
    }
    return line;
  }
}
