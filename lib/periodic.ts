/** Runs a task now and then every interval; `restart()` runs it now again and restarts the interval. */
import type { Clock } from "./clock.ts";

/** A periodic task. */
export class Periodic {
  #cycle: AbortController | undefined;

  /**
   * @param intervalMs period between runs
   * @param task what to run; its errors are the task's own business (catch them inside)
   */
  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly clock: Clock,
  ) {}

  /** Runs the task now, then every interval, replacing any earlier schedule. */
  restart(): void {
    this.stop();
    const cycle = new AbortController();
    this.#cycle = cycle;
    (async () => {
      while (!cycle.signal.aborted) {
        await this.task();
        await this.clock.sleep(this.intervalMs, cycle.signal);
      }
    })().catch(() => {});
  }

  /** Stops the schedule (a run in progress finishes). */
  stop(): void {
    this.#cycle?.abort();
    this.#cycle = undefined;
  }
}
