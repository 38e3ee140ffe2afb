/**
 * How the delivery unit waits on what it cannot do without: snapd's answers are retried within the lookup budget
 * (`snapd.conflict-timeout`), journal writes until they succeed (a full disk must not lose an action).
 */
import type { Clock } from "../clock.ts";
import type { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { type BackoffOptions, retry } from "../retry.ts";
import { errorMessage } from "../errors.ts";

/** What the waits need. */
export interface Patience {
  clock: Clock;
  backoff: BackoffOptions;
  /** The lookup budget, in ms. */
  patienceMs: number;
  /** Ends every wait (the delivery unit stops). */
  signal: AbortSignal;
  log: Logger;
  /** Where failed writes are reported, once per cause. */
  storage: FailureLog;
}

/** Reads from snapd, retried within the lookup budget; `what` names it in the log. */
export function lookup<T>(what: string, read: () => Promise<T>, patience: Patience): Promise<T> {
  const { clock, backoff, patienceMs, signal, log } = patience;
  return retry(read, {
    ...backoff,
    clock,
    budgetMs: patienceMs,
    signal,
    onRetry: (error, delay) =>
      log.warn(`${what} failed: ${errorMessage(error)}`, { retry_in: `${Math.round(delay)}ms` }),
  });
}

/** A journal write, retried with backoff until it succeeds. */
export async function durably<T>(write: () => T, patience: Patience): Promise<T> {
  const { clock, backoff, signal, storage } = patience;
  const result = await retry(() => Promise.resolve().then(write), {
    ...backoff,
    clock,
    signal,
    onRetry: (error, delay) => storage.failed(errorMessage(error), delay),
  });
  storage.succeeded();
  return result;
}
