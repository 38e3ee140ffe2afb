/** Health and metrics timers with a fake clock and a fake publisher: when each goes out, and when not. */
import { createLogger, MemorySink } from "../../../lib/log.ts";
import { Telemetry } from "../../../lib/dms/telemetry.ts";
import type { SnapdSnap } from "../../../lib/snapd/types.ts";
import { assertEquals, assertOk } from "../../support/assert.ts";
import { FakeClock } from "../../support/fake_clock.ts";
import { makeSnap } from "../../support/fake_snapd.ts";

function bench(options: { failPublish?: () => boolean } = {}) {
  const clock = new FakeClock();
  const sent: { topic: string; at: number; qos: number; payload: string }[] = [];
  const snaps: SnapdSnap[] = [makeSnap("peer-svc")];
  const telemetry = new Telemetry({
    device: { id: "dev-1", organizationId: "org-1" },
    protocol: "2",
    topics: { health: "devices/health/dev-1", metrics: "metrics/org-1" },
    publish(topic, payload, qos) {
      if (options.failPublish?.()) return Promise.reject(new Error("not connected to the broker"));
      sent.push({ topic, at: clock.now(), qos, payload });
      return Promise.resolve();
    },
    snapd: { snaps: () => Promise.resolve(snaps) },
    readMetrics: (id) => Promise.resolve([`memory,device=${id} total=1i`, `cpu,device=${id} user=1`]),
    healthIntervalMs: 60_000,
    metricsIntervalMs: 30_000,
    clock,
    log: createLogger("test", { level: "debug", sink: new MemorySink() }),
  });
  const at = (topic: string, start: number) => sent.filter((m) => m.topic === topic).map((m) => m.at - start);
  return { clock, sent, telemetry, at };
}

Deno.test("health goes out at connect and then every health.interval; metrics on their own interval", async () => {
  const { clock, telemetry, at, sent } = bench();
  const start = clock.now();
  telemetry.start();
  await clock.advance(180_000);
  assertEquals(at("devices/health/dev-1", start), [0, 60_000, 120_000, 180_000]);
  assertEquals(at("metrics/org-1", start), [
    0,
    0,
    30_000,
    30_000,
    60_000,
    60_000,
    90_000,
    90_000,
    120_000,
    120_000,
    150_000,
    150_000,
    180_000,
    180_000,
  ]);
  assertEquals([...new Set(sent.map((m) => `${m.topic} qos ${m.qos}`))].sort(), [
    "devices/health/dev-1 qos 1",
    "metrics/org-1 qos 0",
  ]);
  const health = JSON.parse(sent.find((m) => m.topic === "devices/health/dev-1")!.payload);
  assertEquals([health.deviceId, health.orgId, typeof health.snapListHash], ["dev-1", "org-1", "string"]);
  assertEquals(telemetry.lastHealthAt, start + 180_000);
  telemetry.stop();
});

Deno.test("nothing is published while disconnected; the next connect sends health at once", async () => {
  const { clock, telemetry, at } = bench();
  const start = clock.now();
  telemetry.start();
  await clock.advance(70_000);
  telemetry.stop();
  await clock.advance(100_000);
  telemetry.start();
  await clock.advance(1_000);
  telemetry.stop();
  assertEquals(at("devices/health/dev-1", start), [0, 60_000, 170_000]);
});

Deno.test("a publish that fails does not stop the schedule and leaves lastHealthAt alone", async () => {
  let down = true;
  const { clock, telemetry, at } = bench({ failPublish: () => down });
  const start = clock.now();
  telemetry.start();
  await clock.advance(1_000);
  assertEquals(telemetry.lastHealthAt, undefined);
  down = false;
  await clock.advance(60_000);
  assertEquals(at("devices/health/dev-1", start), [60_000]);
  assertOk(telemetry.lastHealthAt === start + 60_000);
  telemetry.stop();
});
