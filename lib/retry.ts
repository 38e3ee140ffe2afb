/**
 * Capped exponential backoff with full jitter: the n-th delay is drawn uniformly from
 * `[0, min(maxMs, initialMs * multiplier^n)]`, so a fleet that lost its broker at the same moment does not
 * come back in lockstep.
 */
import { type Clock, systemClock } from "./clock.ts";

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
  /** Stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Gives up (rethrows) once this much time has passed since the first attempt, in ms. @default Infinity */
  budgetMs?: number;
  /** Whether an error is worth another attempt. @default every error */
  shouldRetry?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log the failure. */
  onRetry?: (error: unknown, delayMs: number) => void;
  /** @default systemClock */
  clock?: Clock;
}

/**
 * Calls `fn` until it succeeds, waiting a jittered backoff delay between attempts. Rethrows the last error when
 * `shouldRetry` says no or the budget would be exceeded by the next wait.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const clock = options.clock ?? systemClock;
  const backoff = new Backoff(options);
  const started = clock.now();
  const budget = options.budgetMs ?? Infinity;
  for (let attempt = 0;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (options.shouldRetry && !options.shouldRetry(error)) throw error;
      const delay = backoff.next();
      if (clock.now() - started + delay > budget) throw error;
      options.onRetry?.(error, delay);
      await clock.sleep(delay, options.signal);
    }
  }
}
