/**
 * A clock tests move by hand: `sleep()` waits for `advance()`, which wakes sleepers in time order and lets the
 * promise chains they start run before moving on, so a test controls time instead of sleeping.
 */
import type { Clock } from "../../lib/clock.ts";

interface Sleeper {
  at: number;
  seq: number;
  wake(): void;
}

/** A clock that moves only when told. */
export class FakeClock implements Clock {
  #now: number;
  #monotonic = 0;
  #seq = 0;
  readonly #sleepers = new Set<Sleeper>();

  constructor(start = Date.UTC(2026, 10, 29, 12)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#monotonic;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers.delete(sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.add(sleeper);
    });
  }

  /** How many sleeps are waiting. */
  get sleeping(): number {
    return this.#sleepers.size;
  }

  /** The delays (from now, in ms) of the waiting sleeps, soonest first. */
  get pendingDelays(): number[] {
    return [...this.#sleepers].map((s) => s.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, waking every sleeper that falls due, in order, settling in between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const due = [...this.#sleepers].filter((s) => s.at <= target).sort((a, b) =>
        a.at - b.at || a.seq - b.seq
      );
      if (due.length === 0) break;
      const sleeper = due[0];
      this.#sleepers.delete(sleeper);
      this.#monotonic += Math.max(0, sleeper.at - this.#now);
      this.#now = Math.max(this.#now, sleeper.at);
      sleeper.wake();
      await settle();
    }
    this.#monotonic += Math.max(0, target - this.#now);
    this.#now = target;
    await settle();
  }

  /** Sets the wall clock without waking anyone and without moving the monotonic clock (a clock jump). */
  set(ms: number): void {
    const shift = ms - this.#now;
    this.#now = ms;
    for (const sleeper of this.#sleepers) sleeper.at += shift; // sleeps are measured in elapsed time
  }
}

/** Lets every pending promise chain and zero-delay timer run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}
