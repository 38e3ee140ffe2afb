/**
 * At most `limit` tasks at once; the others wait their turn in arrival order. It keeps a burst of actions from
 * opening a socket each to snapd at the same moment.
 *
 * Two priorities share the turns: a `yielding` task (the local NATS API's) gets a free turn only when no `first`
 * task (the DMS's actions) waits, so a flood of local requests never makes the DMS wait behind it for more than
 * the tasks already running.
 */

/** Whose turn comes first when turns are scarce. */
export type Priority = "first" | "yielding";

/** At most `limit` tasks at once, in two priorities. */
export class ConcurrencyLimit {
  #running = 0;
  readonly #waiting: Record<Priority, (() => void)[]> = { first: [], yielding: [] };

  /** @param limit tasks allowed to run at once (at least 1) */
  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** Tasks waiting for a turn. */
  get waiting(): number {
    return this.#waiting.first.length + this.#waiting.yielding.length;
  }

  /** Runs `task` once a turn is free; resolves or rejects with its outcome. @param priority @default "first" */
  async run<T>(task: () => Promise<T>, priority: Priority = "first"): Promise<T> {
    if (this.#running >= this.limit) {
      await new Promise<void>((resolve) => this.#waiting[priority].push(resolve));
    } else this.#running++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.first.shift() ?? this.#waiting.yielding.shift();
      if (next) next(); // the turn passes on; the count stays
      else this.#running--;
    }
  }
}
