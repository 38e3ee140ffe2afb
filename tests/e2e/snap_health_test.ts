/**
 * The snap's health as snapd shows it (`snap info`): the agent daemon, inside a snap, says `okay` while it has its
 * broker, `error` (code broker-unreachable) once it had none for longer than `health.unreachable-error`, and `okay`
 * again when the broker is back — each told once, through snapctl (a fake one recording the calls).
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../support/assert.ts";
import { Child } from "../support/child.ts";
import { preEnroll } from "../support/enrolled_device.ts";
import { fakeSnap } from "../support/fake_snap.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";
import { SnapHealth } from "../../lib/snap_health.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";

const DEVICE_ID = "2F0tSnapHealthDevice0000000";

Deno.test({
  name:
    "snap health: okay with a broker, error once it has been gone longer than health.unreachable-error, okay again",
  ...E2E,
  async fn() {
    const snap = await fakeSnap();
    try {
      await withWorld(async (world) => {
        await preEnroll(world, { id: DEVICE_ID, commonName: "health-device", serial: "PEER0001" });
        // the daemon as the snap runs it (bin/agent run), with the fake snapctl on its PATH
        const agent = Child.spawn(join(snap.env.SNAP, "bin/agent"), ["run"], {
          env: {
            ...world.env,
            ...snap.env,
            SNAP_DATA: world.dataDir,
            SNAP_COMMON: world.commonDir,
            SNAP_INSTANCE_NAME: "iot-agent-health-test",
            IOTAGENT_HEALTH_UNREACHABLE_ERROR: "2s",
          },
        });
        const health = async () => (await snap.calls()).filter((c) => c.startsWith("set-health"));
        await world.dms.health(DEVICE_ID, { timeoutMs: 30_000 });
        await until(async () => (await health()).length === 1, "okay told");
        assertEquals(await health(), ["set-health okay"]);
        await world.broker.kill();
        await until(async () => (await health()).length === 2, "the error told", 30_000);
        assertMatch(
          (await health())[1],
          /^set-health --code=broker-unreachable error no broker for \d+ min: /,
        );
        await world.broker.restart();
        await until(async () => (await health()).length === 3, "okay again", 30_000);
        assertEquals((await health())[2], "set-health okay");
        await agent.stop();
      });
    } finally {
      await snap.remove();
      await Deno.remove("/run/snap.iot-agent-health-test", { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("a health message longer than snapd takes is cut; the same health is told once", async () => {
  const calls: string[][] = [];
  const health = new SnapHealth((args) => {
    calls.push(args);
    return Promise.resolve({ success: true, stdout: "", stderr: "" });
  }, createLogger("test", { sink: new MemorySink() }));
  const message = "x".repeat(200);
  await health.report({ status: "error", code: "storage-failing", message });
  await health.report({ status: "error", code: "storage-failing", message });
  assertEquals(calls.length, 1);
  assertEquals(calls[0].at(-1)!.length, 70);
});
