/**
 * snapd refuses a change on a snap that has another change in progress (409 `snap-change-conflict`). Such a
 * request is retried with capped full-jitter backoff for `snapd.conflict-timeout`, then answered with snapd's
 * error.
 */
import { retry } from "../retry.ts";
import { SnapdError } from "../snapd/error.ts";
import type { ActionContext } from "./context.ts";
import { errorMessage } from "../errors.ts";

/** Runs a snapd mutation, retrying while it conflicts with a change in progress. */
export function retryOnConflict<T>(mutation: () => Promise<T>, context: ActionContext): Promise<T> {
  return retry(mutation, {
    clock: context.clock,
    initialMs: 500,
    maxMs: 10_000,
    budgetMs: context.conflictTimeoutMs,
    shouldRetry: (error) => error instanceof SnapdError && error.isConflict,
    onRetry: (error, delayMs) =>
      context.log.info(`snapd is busy, retrying: ${errorMessage(error)}`, {
        retry_in: `${Math.round(delayMs)}ms`,
      }),
  });
}
