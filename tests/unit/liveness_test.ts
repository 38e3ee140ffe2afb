/** Proof of life for systemd's watchdog: pings only while every check passes; a failing check stops them. */
import { Liveness } from "../../lib/liveness.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import type { Notifier } from "../../lib/system/sd_notify.ts";
import { assertEquals } from "../support/assert.ts";
import { FakeClock } from "../support/fake_clock.ts";

function recorder(watchdogMs?: number): Notifier & { sent: string[] } {
  const sent: string[] = [];
  return { sent, watchdogMs, notify: (state) => (sent.push(state), Promise.resolve()), close() {} };
}

Deno.test("READY=1, then WATCHDOG=1 at half the deadline while the checks pass; a failing check stops the pings", async () => {
  const clock = new FakeClock();
  const notifier = recorder(10_000);
  const logs = new MemorySink();
  let databaseAnswers = true;
  const liveness = new Liveness({
    notifier,
    clock,
    log: createLogger("test", { sink: logs, level: "debug" }),
    checks: { "the database": () => (databaseAnswers ? undefined : "database is locked") },
  });
  await liveness.ready();
  await clock.advance(15_000); // pings at 0, 5 and 10 s; the next at 15 s
  assertEquals(notifier.sent, ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]);
  databaseAnswers = false;
  await clock.advance(20_000);
  assertEquals(notifier.sent.length, 5, "no ping while the database does not answer");
  assertEquals(
    logs.records({ level: "warn", message: /the database: database is locked; not telling systemd/ }).length,
    1,
    "said once",
  );
  databaseAnswers = true;
  await clock.advance(5000);
  assertEquals(notifier.sent.at(-1), "WATCHDOG=1", "pings again once it answers");
  await liveness.stop();
  assertEquals(notifier.sent.at(-1), "STOPPING=1");
});

Deno.test("without a watchdog deadline: only READY=1 and STOPPING=1", async () => {
  const clock = new FakeClock();
  const notifier = recorder(undefined);
  const liveness = new Liveness({
    notifier,
    clock,
    log: createLogger("test", { sink: new MemorySink() }),
    checks: {},
  });
  await liveness.ready();
  await clock.advance(60_000);
  await liveness.stop();
  assertEquals(notifier.sent, ["READY=1", "STOPPING=1"]);
});
