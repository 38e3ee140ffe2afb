/**
 * The one retry primitive of the agent. Capped exponential backoff with full jitter: the n-th delay is drawn
 * uniformly from `[0, min(maxMs, initialMs * multiplier^n)]`, so a fleet that lost its broker at the same moment
 * does not come back in lockstep. Budgets are measured on the monotonic clock: an NTP jump neither ends a retry
 * early nor stretches it. Every loop that tries again — enrollment, the broker session, the NATS connection,
 * required installs, snapd requests, snapd lookups, storage writes, the outbox — goes through {@link retry}.
 */
import type { Clock } from "./clock.ts";

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** Ceiling of the first delay, in ms. @default 1000 */
  initialMs?: number;
  /** Cap of every delay, in ms. @default 120000 */
  maxMs?: number;
  /** Growth of the ceiling per attempt. @default 2 */
  multiplier?: number;
  /** Source of randomness in [0, 1). @default Math.random */
  random?: () => number;
}

/** A sequence of jittered delays; `reset()` after a success. */
export class Backoff {
  #attempt = 0;
  readonly #initial: number;
  readonly #max: number;
  readonly #multiplier: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 1000;
    this.#max = Math.max(options.maxMs ?? 120_000, 0);
    this.#multiplier = options.multiplier ?? 2;
    this.#random = options.random ?? Math.random;
  }

  /** The ceiling the next delay is drawn under, in ms. */
  get ceiling(): number {
    return Math.min(this.#max, this.#initial * this.#multiplier ** this.#attempt);
  }

  /** Draws the next delay in ms and moves to the next attempt. */
  next(): number {
    const delay = this.#random() * this.ceiling;
    if (this.ceiling < this.#max) this.#attempt++;
    return delay;
  }

  /** Starts again from the first delay. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Options of {@link retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Time: the budget is measured on its monotonic clock, the waits are its sleeps. */
  clock: Clock;
  /** Stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Gives up once the next wait would end this long after the first attempt, in ms. @default Infinity */
  budgetMs?: number;
  /** Whether an error is worth another attempt; one that is not is thrown as it is. @default every error */
  shouldRetry?: (error: unknown) => boolean;
  /**
   * Called before each wait (e.g. to log the failure); a promise it returns is awaited with the wait, and what it
   * throws is ignored (telling must not stop trying).
   */
  onRetry?: (error: unknown, delayMs: number, attempt: number) => void | Promise<void>;
  /**
   * The delay before the next attempt when it should not come from the backoff (e.g. a random spread after a
   * connection that was up); undefined: the backoff's.
   */
  delayAfter?: (error: unknown) => number | undefined;
  /** The backoff to draw from, when the caller resets it itself (e.g. once a connection is up). */
  backoff?: Backoff;
}

/** A retry that ran out of budget: the last attempt's error (its message is this one's), and how many there were. */
export class RetryError extends Error {
  override name = "RetryError";

  constructor(readonly attempts: number, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * Calls `fn` until it succeeds, waiting a jittered backoff delay between attempts.
 * @throws the error itself when `shouldRetry` says no; a {@link RetryError} when the budget would be exceeded by
 *   the next wait; the signal's reason when it aborts
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { clock, signal } = options;
  const backoff = options.backoff ?? new Backoff(options);
  const started = clock.monotonic();
  const budget = options.budgetMs ?? Infinity;
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (options.shouldRetry && !options.shouldRetry(error)) throw error;
      const delay = options.delayAfter?.(error) ?? backoff.next();
      if (clock.monotonic() - started + delay > budget) throw new RetryError(attempt + 1, error);
      const told = Promise.resolve().then(() => options.onRetry?.(error, delay, attempt + 1)).catch(() => {});
      await Promise.all([told, clock.sleep(delay, signal)]);
    }
  }
}
