import { assertEquals, assertOk, assertRejects } from "../support/assert.ts";
import { Backoff, retry, RetryError } from "../../lib/retry.ts";
import { type Clock, systemClock } from "../../lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";

Deno.test("Backoff draws full-jitter delays under an exponentially growing, capped ceiling", () => {
  const ceilings: number[] = [];
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 - Number.EPSILON });
  for (let i = 0; i < 8; i++) {
    ceilings.push(backoff.ceiling);
    backoff.next();
  }
  assertEquals(ceilings, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  backoff.reset();
  assertEquals(backoff.ceiling, 100);
});

Deno.test("Backoff delays are spread over [0, ceiling), not fixed", () => {
  const draws = new Set<number>();
  const backoff = new Backoff({ initialMs: 1000, maxMs: 1000 });
  for (let i = 0; i < 50; i++) {
    const delay = backoff.next();
    assertOk(delay >= 0 && delay < 1000, `delay ${delay} out of range`);
    draws.add(Math.round(delay));
  }
  assertOk(draws.size > 10, "delays should differ from device to device");
});

/** A clock whose sleeps return at once but advance its time. */
function instantClock(): Clock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    monotonic: () => now,
    sleep(ms: number) {
      slept.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
}

Deno.test("retry retries until success and waits a jittered delay between attempts", async () => {
  const clock = instantClock();
  let calls = 0;
  const value = await retry(() => (++calls < 4 ? Promise.reject(new Error("no")) : Promise.resolve("yes")), {
    clock,
    initialMs: 10,
    maxMs: 40,
    random: () => 0.5,
  });
  assertEquals(value, "yes");
  assertEquals(calls, 4);
  assertEquals(clock.slept, [5, 10, 20]);
});

Deno.test("retry gives up when shouldRetry says no, or the budget would be exceeded", async () => {
  const clock = instantClock();
  await assertRejects(
    retry(() => Promise.reject(new TypeError("fatal")), {
      clock,
      shouldRetry: (e) => !(e instanceof TypeError),
    }),
    TypeError,
  );
  let calls = 0;
  const last = new Error("down");
  const error = await assertRejects(
    retry(() => (calls++, Promise.reject(calls === 4 ? last : new Error("earlier"))), {
      clock,
      initialMs: 100,
      maxMs: 100,
      random: () => 1,
      budgetMs: 350,
    }),
    RetryError,
    "down",
  ) as RetryError;
  assertEquals(calls, 4);
  assertEquals([error.attempts, error.cause], [4, last], "the failure carries its attempts and its cause");
});

Deno.test("a retry budget runs on the monotonic clock: a wall-clock jump neither ends it nor stretches it", async () => {
  for (const jump of [365 * 86_400_000, -365 * 86_400_000]) {
    const clock = new FakeClock();
    let calls = 0;
    const outcome = retry(() => (calls++, Promise.reject(new Error("busy"))), {
      clock,
      initialMs: 1000,
      maxMs: 1000,
      random: () => 1,
      budgetMs: 5000,
    }).then(() => "succeeded", (error) => error);
    await clock.advance(2000);
    clock.set(clock.now() + jump); // NTP moves the wall clock a year
    assertEquals(calls, 3, "the jump did not end the budget early");
    await clock.advance(10_000);
    const error = await outcome;
    assertOk(error instanceof RetryError, String(error));
    assertEquals(calls, 6, `attempts at 0, 1, 2, 3, 4 and 5 s of elapsed time (jump ${jump})`);
  }
});

Deno.test("retry stops waiting when its signal aborts", async () => {
  const controller = new AbortController();
  const pending = retry(() => Promise.reject(new Error("down")), {
    clock: systemClock,
    signal: controller.signal,
    initialMs: 60_000,
    random: () => 1,
  });
  setTimeout(() => controller.abort(new Error("stopped")), 10);
  await assertRejects(pending, Error, "stopped");
});
