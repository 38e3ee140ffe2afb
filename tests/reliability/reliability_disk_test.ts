/**
 * Disk full on `$SNAP_DATA` (a small tmpfs, as root): the real agent keeps answering what it can (read-only
 * actions), refuses what it cannot record with a clear error, corrupts nothing, and recovers by itself once space
 * returns. Where a tmpfs cannot be mounted (not root) the test says so on one line and is skipped — except under
 * CI=true, where it fails.
 */
import { needs } from "../support/requirement.ts";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertIncludes } from "../support/assert.ts";
import { count, trial } from "../support/reliability.ts";
import { E2E, startWorld } from "../support/world.ts";

async function run(command: string, ...args: string[]): Promise<boolean> {
  return (await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output()).success;
}

const canMount = Deno.uid() === 0 && await (async () => {
  const probe = await Deno.makeTempDir();
  const ok = await run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe);
  if (ok) await run("umount", probe);
  await Deno.remove(probe);
  return ok;
})();

/** Fills the file system of `dir` to the last byte; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, "filler");
  const file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  try {
    for (;;) await file.write(chunk);
  } catch { /* ENOSPC: full */ }
  file.close();
  return path;
}

Deno.test({
  name:
    "disk full: read-only actions answered, changes refused and not run, nothing corrupt, recovery by itself",
  ...E2E,
  ...needs("disk-full test", canMount ? undefined : "mounting a tmpfs needs root"),
  async fn() {
    const fault = {
      area: "disk",
      fault: "$SNAP_DATA full (a 4 MB tmpfs filled to the last byte)",
      note:
        "lost: a read-only action unanswered, or a change run without a record; repeated: snapd asked twice; " +
        "recovered: a change answered and done once space returned, the database intact",
    };
    await trial(fault, count(1, 3), async (_t, counts) => {
      const world = await startWorld();
      const mounted = await run("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", world.dataDir);
      try {
        assertEquals(mounted, true);
        await world.configure(); // params again, on the small file system
        const agent = world.agent();
        const deviceId = await world.online();
        assertEquals(
          (await world.dms.request(deviceId, { action: "disable", snap: "peer-svc" })).success,
          true,
        );
        const filler = await fill(world.dataDir);
        const posts = () => world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").length;

        const device = await world.dms.request(deviceId, { action: "device" }).catch(() => undefined);
        const change = await world.dms.request(deviceId, { action: "enable", snap: "peer-svc" });
        const ranWhileFull = posts() - 1;
        if (!device?.success || ranWhileFull > 0) counts.lost++;
        assertEquals(device?.success, true, "a read-only action is answered without a record");
        assertEquals(change.success, false);
        assertIncludes(change.message as string, "the device's storage is full");
        assertEquals(ranWhileFull, 0, "the refused change never ran");
        await agent.waitForLine(/storing action state failed: recording actions: database or disk is full/);

        await Deno.remove(filler); // space again
        const after = await world.dms.request(deviceId, { action: "enable", snap: "peer-svc" });
        if (posts() > 2) counts.repeatedEffects++;
        await agent.stop();
        const db = new DatabaseSync(join(world.dataDir, "agent.db"));
        const integrity =
          (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
        db.close();
        if (after.success && posts() === 2 && integrity === "ok") counts.recovered++;
        assertEquals(after.success, true, "recovered by itself");
        assertEquals(posts(), 2);
        assertEquals(integrity, "ok");
      } finally {
        await world.stop().catch(() => {}); // its directory stays while the tmpfs is mounted on it
        if (mounted) await run("umount", "-l", world.dataDir);
        await Deno.remove(world.dir, { recursive: true }).catch(() => {});
      }
    });
  },
});
