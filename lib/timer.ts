/**
 * Timers for any delay. `setTimeout` holds its delay in a signed 32-bit integer: a delay above 2^31−1 ms (about
 * 24.8 days) fires after 1 ms, so a setting of `1000h` would turn a periodic task into a busy loop. Every timer of
 * the agent goes through here and chains timers of at most that length until the whole delay has passed.
 */

/** The longest delay one `setTimeout` honours, in ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `callback` once `ms` milliseconds have passed, however long that is (`Infinity`: never). Returns a
 * function that cancels it.
 */
export function setLongTimeout(callback: () => void, ms: number): () => void {
  let remaining = Math.max(0, ms);
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const step = Math.min(remaining, MAX_TIMER_MS);
    remaining -= step;
    timer = setTimeout(remaining > 0 ? arm : callback, step);
  };
  arm();
  return () => clearTimeout(timer);
}
