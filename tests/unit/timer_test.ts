/** Timers past setTimeout's 2^31−1 ms limit wait, they do not fire at once (a busy loop otherwise). */
import { assertEquals } from "../support/assert.ts";
import { MAX_TIMER_MS, setLongTimeout } from "../../lib/timer.ts";
import { systemClock } from "../../lib/clock.ts";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("setLongTimeout: a delay above 2^31-1 ms does not fire early; a short one fires; cancel stops it", async () => {
  let long = 0;
  let short = 0;
  const cancelLong = setLongTimeout(() => long++, MAX_TIMER_MS + 1000);
  const cancelShort = setLongTimeout(() => short++, 20);
  const cancelled = setLongTimeout(() => short++, 30);
  cancelled();
  await pause(300);
  cancelLong();
  cancelShort();
  assertEquals({ long, short }, { long: 0, short: 1 });
});

Deno.test("the real clock sleeps 1000 h without waking, and a signal still ends the sleep", async () => {
  const stop = new AbortController();
  let woke = false;
  const sleeping = systemClock.sleep(3_600_000_000, stop.signal).then(() => (woke = true), () => "aborted");
  await pause(300);
  assertEquals(woke, false);
  stop.abort();
  assertEquals(await sleeping, "aborted");
});

Deno.test("the real clock's monotonic time is the process's monotonic clock, not the wall clock", () => {
  // the wall clock may jump (NTP); every "how long" in the agent is measured on this one
  const gap = Math.abs(systemClock.monotonic() - performance.now());
  assertEquals(gap < 50, true, `monotonic() is ${gap} ms away from performance.now()`);
  assertEquals(Math.abs(systemClock.now() - Date.now()) < 50, true, "now() is the wall clock");
});
