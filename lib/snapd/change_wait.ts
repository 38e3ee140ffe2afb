/**
 * Waiting for a snapd change to be ready (Done, Error, Undone, Hold): polled with jittered backoff, a failed read
 * retried, time measured on the monotonic clock so that a wall-clock jump neither ends the wait nor stretches it.
 */
import type { Clock } from "../clock.ts";
import { Backoff, type BackoffOptions } from "../retry.ts";
import { SnapdError } from "./error.ts";
import type { SnapdPort } from "./port.ts";
import type { SnapdChange } from "./types.ts";
import { asError } from "../errors.ts";

/** Options of {@link waitForChange}. */
export interface ChangeWaitOptions {
  clock: Clock;
  /** Give up after this long, in ms. @default Infinity */
  patienceMs?: number;
  /** Delays between reads. @default { initialMs: 100, maxMs: 2000 } */
  poll?: BackoffOptions;
  /** Stops waiting (the promise rejects with its reason). */
  signal?: AbortSignal;
  /** A read that failed; it is retried. */
  onReadError?(error: Error): void;
}

/** How a wait ended. */
export type ChangeWaitOutcome =
  | { kind: "ready"; change: SnapdChange }
  /** snapd no longer knows the change (404). */
  | { kind: "gone" }
  | { kind: "timed out" };

/** Waits until change `id` is ready, snapd forgets it, or the patience runs out. */
export async function waitForChange(
  snapd: Pick<SnapdPort, "change">,
  id: string,
  options: ChangeWaitOptions,
): Promise<ChangeWaitOutcome> {
  const { clock, patienceMs = Infinity, signal } = options;
  const started = clock.monotonic();
  const poll = new Backoff({ initialMs: 100, maxMs: 2000, ...options.poll });
  for (;;) {
    try {
      const change = await snapd.change(id);
      if (change.ready) return { kind: "ready", change };
    } catch (error) {
      if (error instanceof SnapdError && error.status === 404) return { kind: "gone" };
      options.onReadError?.(asError(error));
    }
    const delay = poll.next();
    if (clock.monotonic() - started + delay > patienceMs) return { kind: "timed out" };
    await clock.sleep(delay, signal);
  }
}
