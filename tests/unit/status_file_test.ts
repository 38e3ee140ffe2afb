/** The status file is written when a reader would see a change, else refreshed once a minute (fake clock). */
import { createLogger, MemorySink } from "../../lib/log.ts";
import { StatusFile } from "../../lib/status_file.ts";
import { assertEquals } from "../support/assert.ts";
import { FakeClock } from "../support/fake_clock.ts";

Deno.test("visible changes are written at once; times and memory alone only once a minute; a forced write always", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const clock = new FakeClock();
    const path = `${dir}/status.json`;
    const file = new StatusFile<{ state: string; updatedAt: number; rss: number }>({
      path,
      visible: ({ state }) => state,
      clock,
      log: createLogger("test", { sink: new MemorySink() }),
    });
    const written = async () => JSON.parse(await Deno.readTextFile(path)).updatedAt as number;
    const offer = async (state: string, force = false) => {
      await file.update({ state, updatedAt: clock.now(), rss: Math.random() }, force);
    };
    const start = clock.now();
    await offer("running");
    assertEquals(await written(), start, "the first document is written");
    for (let i = 0; i < 11; i++) {
      await clock.advance(5000);
      await offer("running"); // every 5 s, as the agent looks: only times and memory differ
    }
    assertEquals(await written(), start, "nothing visible changed within the minute: not written");
    await clock.advance(5000);
    await offer("running");
    assertEquals(await written(), start + 60_000, "refreshed after a minute");
    await clock.advance(1000);
    await offer("connected");
    assertEquals(await written(), start + 61_000, "a visible change is written at once");
    await clock.advance(1000);
    await offer("connected", true);
    assertEquals(await written(), start + 62_000, "forced (the daemon stops)");
    const mode = (await Deno.stat(path)).mode! & 0o777;
    assertEquals(mode, 0o600, "private like every file of the agent (`status` runs as root in the snap)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
