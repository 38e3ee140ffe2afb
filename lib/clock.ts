import { setLongTimeout } from "./timer.ts";

/** Time as a port, so tests can control it instead of sleeping. */
export interface Clock {
  /** Milliseconds since the Unix epoch (the wall clock: it may jump, e.g. when NTP sets it). */
  now(): number;
  /** Milliseconds on a clock that only moves forward, at the pace of time (for "how long", never "when"). */
  monotonic(): number;
  /** Resolves after `ms` milliseconds; rejects with the signal's reason when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        cancel();
        reject(signal?.reason);
      };
      const cancel = setLongTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};
