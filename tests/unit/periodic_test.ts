/** Periodic tasks keep their schedule when a run throws, and say so once per cause (fake clock, no sleeps). */
import { createLogger, MemorySink } from "../../lib/log.ts";
import { Periodic } from "../../lib/periodic.ts";
import { assertEquals } from "../support/assert.ts";
import { FakeClock } from "../support/fake_clock.ts";

Deno.test("a task that throws is logged once per cause and runs again at every interval", async () => {
  const clock = new FakeClock();
  const logs = new MemorySink();
  const runs: number[] = [];
  const outcomes = ["ok", "boom", "boom", "bang", "ok"];
  const periodic = new Periodic(() => {
    runs.push(clock.now());
    const outcome = outcomes[runs.length - 1];
    if (outcome === "ok") return Promise.resolve();
    if (outcome === "bang") return Promise.reject(new Error(outcome));
    throw new Error(outcome); // a synchronous throw, too
  }, {
    name: "publishing health",
    intervalMs: 1000,
    clock,
    log: createLogger("test", { level: "debug", sink: logs }),
  });
  const start = clock.now();
  periodic.restart();
  await clock.advance(4000);
  periodic.stop();
  assertEquals(runs.map((at) => at - start), [0, 1000, 2000, 3000, 4000]);
  assertEquals(logs.records({ level: "warn", message: /publishing health failed: boom/ }).length, 1);
  assertEquals(logs.records({ level: "debug", message: /publishing health failed again: boom/ }).length, 1);
  assertEquals(logs.records({ level: "warn", message: /publishing health failed: bang/ }).length, 1);
  assertEquals(logs.records({ message: /publishing health succeeded after 3 failed attempt/ }).length, 1);
  await clock.advance(5000);
  assertEquals(runs.length, 5, "stopped");
});

Deno.test("restart runs the task at once and replaces the earlier schedule", async () => {
  const clock = new FakeClock();
  const runs: number[] = [];
  const periodic = new Periodic(() => Promise.resolve(void runs.push(clock.now())), {
    name: "task",
    intervalMs: 1000,
    clock,
    log: createLogger("test", { sink: new MemorySink() }),
  });
  const start = clock.now();
  periodic.restart();
  await clock.advance(500);
  periodic.restart();
  await clock.advance(1000);
  periodic.stop();
  assertEquals(runs.map((at) => at - start), [0, 500, 1500]);
});
