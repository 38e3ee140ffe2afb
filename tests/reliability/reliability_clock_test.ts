/**
 * The clock at 1970, for real: a device without an RTC boots in 1970 and NTP sets the clock later. The real agent
 * runs under libfaketime (its wall clock read from a file the test rewrites; its monotonic clock left alone), so
 * its TLS stack sees the broker's certificate as not valid yet: the agent must refuse it with a line that says to
 * set the clock, keep retrying, and — once the clock is set — connect at its next reconnect and answer.
 */
import { join } from "node:path";
import { assertEquals, assertIncludes } from "../support/assert.ts";
import { trial } from "../support/reliability.ts";
import { E2E, withWorld } from "../support/world.ts";

/** libfaketime's multi-threaded library (Debian package libfaketime, installed with faketime). */
async function libfaketime(): Promise<string> {
  for await (const entry of Deno.readDir("/usr/lib")) {
    const path = join("/usr/lib", entry.name, "faketime", "libfaketimeMT.so.1");
    if (await Deno.stat(path).then(() => true, () => false)) return path;
  }
  throw new Error("libfaketimeMT.so.1 not found (apt-get install faketime)");
}

/** libfaketime's absolute time format. */
function stamp(ms: number): string {
  return "@" + new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

Deno.test({
  name:
    "the clock at 1970, then set by NTP: a real agent refuses the broker ('set the clock'), then connects and answers",
  ...E2E,
  async fn() {
    const fault = {
      area: "clock",
      fault: "the clock at 1970, then set by NTP: a real agent and the broker's certificate",
      note:
        "lost: connected at 1970 or never after; recovered: refused with 'set the clock', then connected at " +
        "its next reconnect and answered",
    };
    const preload = await libfaketime();
    await trial(fault, 1, async (_i, counts) => {
      await withWorld(async (world) => {
        const clock = join(world.dir, "wall-clock");
        await Deno.writeTextFile(clock, stamp(Date.UTC(1970, 0, 1, 0, 5)));
        const agent = world.agent([], {
          LD_PRELOAD: preload,
          FAKETIME_TIMESTAMP_FILE: clock,
          FAKETIME_NO_CACHE: "1",
          FAKETIME_DONT_FAKE_MONOTONIC: "1",
        });
        const refusal = await agent.waitForLine(/connecting to broker .* failed: /, { timeoutMs: 30_000 });
        await agent.waitForLine(/connecting to broker .* failed again/);
        const connectedAt1970 = agent.matching(/connected to broker/).length > 0;
        await Deno.writeTextFile(clock, stamp(Date.now())); // NTP sets the clock
        const id = await world.online({ timeoutMs: 30_000 }).catch(() => undefined);
        const reply = id
          ? await world.dms.request(id, { action: "device" }).catch(() => undefined)
          : undefined;
        if (connectedAt1970 || !reply?.success) counts.lost++;
        else if (/set the clock/.test(refusal)) counts.recovered++;
        assertIncludes(refusal, "is not valid before");
        assertIncludes(refusal, "this device's clock says 1970-01-01: set the clock (NTP");
        assertEquals(connectedAt1970, false, "refused while the clock says 1970");
        assertEquals(reply?.success, true, "connected and answering once the clock is right");
      });
    });
  },
});
