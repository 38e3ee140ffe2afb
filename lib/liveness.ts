/**
 * Proof of life for systemd's watchdog: while systemd watches a daemon (`WatchdogSec`, in the snap
 * `watchdog-timeout`), it says `WATCHDOG=1` at half the deadline — but only after checks that prove its work goes
 * on: the event loop turns (the timer fired), its database answers, its main loop made progress recently. When a
 * check fails the pings stop, so that systemd restarts a daemon that is wedged though still running, and the cause
 * is logged once. Without a watchdog it only says `READY=1` and `STOPPING=1`.
 */
import type { Clock } from "./clock.ts";
import { FailureLog } from "./failure_log.ts";
import type { Logger } from "./log.ts";
import type { Notifier } from "./system/sd_notify.ts";
import { errorMessage } from "./errors.ts";

/** One check: what is wrong, or undefined when all is well. */
export type LivenessCheck = () => string | undefined;

/** Options of {@link Liveness}. */
export interface LivenessOptions {
  notifier: Notifier;
  /** The checks, by what they look at ("database", "broker link"). */
  checks: Record<string, LivenessCheck>;
  clock: Clock;
  log: Logger;
}

/** A daemon's proof of life. */
export class Liveness {
  readonly #options: LivenessOptions;
  readonly #failures: FailureLog;
  readonly #stopping = new AbortController();

  constructor(options: LivenessOptions) {
    this.#options = options;
    this.#failures = new FailureLog(options.log, "proving this daemon alive to systemd's watchdog");
  }

  /** Says `READY=1`, then pings the watchdog (when there is one) until `stop()`. */
  async ready(): Promise<void> {
    const { notifier, clock } = this.#options;
    await notifier.notify("READY=1");
    const deadline = notifier.watchdogMs;
    if (deadline === undefined) return;
    void (async () => {
      while (!this.#stopping.signal.aborted) {
        await this.ping();
        await clock.sleep(deadline / 2, this.#stopping.signal).catch(() => {});
      }
    })();
  }

  /** Runs the checks and says `WATCHDOG=1` when they all pass; returns what failed, if anything. */
  async ping(): Promise<string | undefined> {
    let problem: string | undefined;
    for (const [what, check] of Object.entries(this.#options.checks)) {
      try {
        const wrong = check();
        if (wrong) problem = `${what}: ${wrong}`;
      } catch (error) {
        problem = `${what}: ${errorMessage(error)}`;
      }
      if (problem) break;
    }
    if (problem) {
      this.#failures.failed(`${problem}; not telling systemd this daemon is alive`);
      return problem;
    }
    this.#failures.succeeded();
    await this.#options.notifier.notify("WATCHDOG=1");
    return undefined;
  }

  /** Stops the pings and says `STOPPING=1`. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#options.notifier.notify("STOPPING=1");
    this.#options.notifier.close();
  }
}
