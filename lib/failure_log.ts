import type { Logger } from "./log.ts";

/**
 * Logs a retried operation's failures once per distinct cause: the first failure, and each time the cause
 * changes, at `warn`; repeats of the same cause at `debug`. A success after failures is logged once at `info`.
 * This keeps a device that cannot reach a service for days from filling its journal.
 */
export class FailureLog {
  #lastCause: string | undefined;
  #failures = 0;

  /**
   * @param log where the lines go
   * @param operation what is being retried, e.g. "enrollment"
   */
  constructor(private readonly log: Logger, private readonly operation: string) {}

  /** The cause of the last failure, if the last attempt failed. */
  get lastCause(): string | undefined {
    return this.#lastCause;
  }

  /**
   * Records a failed attempt; `retryInMs` is the delay before the next one, `operation` what failed when it is
   * more precise than the constructor's (e.g. which broker).
   */
  failed(cause: string, retryInMs?: number, operation = this.operation): void {
    this.#failures++;
    const retry = retryInMs === undefined ? undefined : `${Math.round(retryInMs)}ms`;
    if (cause !== this.#lastCause) {
      this.log.warn(`${operation} failed: ${cause}`, {
        retry_in: retry,
        note: "logged again when the cause changes",
      });
    } else {
      this.log.debug(`${operation} failed again: ${cause}`, {
        attempt: this.#failures,
        retry_in: retry,
      });
    }
    this.#lastCause = cause;
  }

  /** Records a success; logs the recovery when there were failures before it. */
  succeeded(operation = this.operation): void {
    if (this.#failures > 0) {
      this.log.info(`${operation} succeeded after ${this.#failures} failed attempt(s)`);
    }
    this.#failures = 0;
    this.#lastCause = undefined;
  }
}
