/**
 * Runs a task now and then every interval; `restart()` runs it now again and restarts the interval. A task that
 * throws is logged (once per distinct cause) and keeps its schedule: one bad run never stops the next.
 */
import type { Clock } from "./clock.ts";
import { FailureLog } from "./failure_log.ts";
import type { Logger } from "./log.ts";

/** Options of {@link Periodic}. */
export interface PeriodicOptions {
  /** What the task does, for log lines ("publishing health"). */
  name: string;
  /** Period between the starts of two runs' waits, in ms. */
  intervalMs: number;
  clock: Clock;
  log: Logger;
}

/** A periodic task. */
export class Periodic {
  readonly #task: () => Promise<void>;
  readonly #options: PeriodicOptions;
  readonly #failures: FailureLog;
  #cycle: AbortController | undefined;

  constructor(task: () => Promise<void>, options: PeriodicOptions) {
    this.#task = task;
    this.#options = options;
    this.#failures = new FailureLog(options.log, options.name);
  }

  /** Runs the task now, then every interval, replacing any earlier schedule. */
  restart(): void {
    this.stop();
    const cycle = new AbortController();
    this.#cycle = cycle;
    this.#loop(cycle.signal);
  }

  /** Stops the schedule (a run in progress finishes). */
  stop(): void {
    this.#cycle?.abort();
    this.#cycle = undefined;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const { intervalMs, clock } = this.#options;
    while (!signal.aborted) {
      try {
        await this.#task();
        this.#failures.succeeded();
      } catch (error) {
        this.#failures.failed(error instanceof Error ? error.message : String(error), intervalMs);
      }
      try {
        await clock.sleep(intervalMs, signal);
      } catch {
        return; // stopped
      }
    }
  }
}
