/**
 * The journal's byte bound (`journal.max-bytes`), flooded from the DMS's side on the delivery bench: large requests
 * keep coming, and agent.db with its WAL stays within the bound plus a stated margin on disk — every request
 * answered, a recent id asked again still answered from its stored reply.
 */
import { assertEquals, assertOk } from "../../support/assert.ts";
import { withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";
import { count, trial } from "../../support/reliability.ts";
import { JOURNAL_MAX_BYTES } from "../../../lib/dms/journal.ts";
import { WAL_SIZE_LIMIT } from "../../../lib/store/database.ts";

const MIB = 1024 * 1024;
/**
 * What the files may hold beyond the bound: the WAL up to sqlite's checkpoint (1000 pages, 4 MiB) and sqlite's pages
 * around the rows (b-tree pages, overflow pages half full, free pages between a prune and its vacuum: 4 MiB).
 * Measured: 20.1 MiB at most; without the byte bound, 42 MiB.
 */
const MARGIN = 8 * MIB;

/** The largest agent.db + WAL seen by the flood, in bytes (for the reliability row). */
let largest = 0;

async function sizeOnDisk(path: string): Promise<number> {
  let total = 0;
  for (const file of [path, `${path}-wal`]) {
    total += await Deno.stat(file).then((info) => info.size, () => 0);
  }
  return total;
}

Deno.test("200 requests of 200 KiB keep agent.db and its WAL within journal.max-bytes plus the margin", async () => {
  await trial(
    {
      area: "flood",
      fault:
        "200 DMS requests of 200 KiB (setconf, info): agent.db + WAL within journal.max-bytes (16 MiB) + 8 MiB",
      note: (counts) =>
        `largest agent.db + WAL seen: ${(largest / MIB).toFixed(1)} MiB over ${counts.tries} tries`,
    },
    count(1, 3),
    async (_, counts) => {
      await withDelivery(async (bench) => {
        const delivery = bench.delivery();
        const data = "x".repeat(200 * 1024);
        const ids = Array.from({ length: 200 }, (_, i) => `big-${i}`);
        for (const [i, id] of ids.entries()) {
          const action = i % 2 ? "info" : "setconf";
          // a snap each: the bench answers setconf with a change that never becomes ready, which holds its snap
          const payload = new TextEncoder().encode(JSON.stringify({ id, action, snap: `s${i}`, data }));
          const taken = delivery.accept(payload); // held while the actions waiting in memory are over their bound
          await settle();
          await taken;
          largest = Math.max(largest, await sizeOnDisk(bench.dbPath));
        }
        await settle();
        const unanswered = ids.filter((id) => bench.responses(id).length !== 1);
        counts.lost += unanswered.length;
        const integrity = bench.db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
        if (integrity.integrity_check !== "ok") counts.damaged++;
        assertEquals(unanswered, [], "every request answered once");
        assertEquals(integrity.integrity_check, "ok");
        assertOk(
          largest <= JOURNAL_MAX_BYTES + MARGIN,
          `agent.db + WAL reached ${(largest / MIB).toFixed(1)} MiB, more than the bound ` +
            `${JOURNAL_MAX_BYTES / MIB} MiB + ${MARGIN / MIB} MiB margin (40 MiB of requests were sent)`,
        );
        const recent = ids.at(-1)!;
        bench.send({ id: recent, action: "info" });
        await settle();
        assertEquals(
          bench.responses(recent).length,
          2,
          "a recent id asked again gets its stored reply again",
        );
        assertEquals(bench.responses(recent)[1], bench.responses(recent)[0]);
        counts.recovered++;
      });
    },
  );
});

Deno.test("a lower journal.max-bytes gives the space back: the file shrinks at the next request", async () => {
  await withDelivery(async (bench) => {
    const first = bench.delivery({ journalMaxBytes: 8 * MIB });
    const data = "x".repeat(200 * 1024);
    for (let i = 0; i < 36; i++) {
      const taken = first.accept(
        new TextEncoder().encode(JSON.stringify({ id: `a${i}`, action: "info", data })),
      );
      await settle();
      await taken;
    }
    first.stop();
    const before = await sizeOnDisk(bench.dbPath);
    const second = bench.delivery({ journalMaxBytes: 1 * MIB });
    second.accept(new TextEncoder().encode(JSON.stringify({ id: "small", action: "info", data: "" })));
    await settle();
    assertEquals(bench.responses("small").length, 1);
    const after = await sizeOnDisk(bench.dbPath);
    assertOk(
      after <= 1.5 * MIB,
      `agent.db + WAL: ${(before / MIB).toFixed(1)} MiB before, ${
        (after / MIB).toFixed(1)
      } MiB after the bound ` +
        `went down to 1 MiB (margin 512 KiB)`,
    );
  });
});

Deno.test("the WAL is cut back to its limit each time it starts over after a checkpoint", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    const data = "x".repeat(200 * 1024);
    const sizes: number[] = [];
    // 30 requests write about 12 MiB of WAL frames (each request's row is written twice, at accept and at answer):
    // sqlite checkpoints at 1000 pages (just under 4 MiB) and starts the file over — within the journal's bound, so no prune does it
    for (let i = 0; i < 30; i++) {
      const payload = new TextEncoder().encode(JSON.stringify({ id: `burst-${i}`, action: "info", data }));
      const taken = delivery.accept(payload);
      await settle();
      await taken;
      sizes.push((await Deno.stat(`${bench.dbPath}-wal`)).size);
    }
    assertEquals(bench.responses("burst-29").length, 1);
    const grown = sizes.findIndex((size) => size >= 3 * MIB);
    assertOk(grown >= 0, `the burst never reached sqlite's checkpoint: ${sizes}`);
    const later = Math.min(...sizes.slice(grown + 1));
    assertOk(
      later <= WAL_SIZE_LIMIT + 512 * 1024,
      `after reaching ${(sizes[grown] / MIB).toFixed(1)} MiB the WAL never went below ${
        (later / MIB).toFixed(1)
      } MiB ` +
        `(limit ${WAL_SIZE_LIMIT / MIB} MiB, margin 512 KiB: the request after the checkpoint)`,
    );
  });
});

Deno.test("over journal.max-bytes, an id whose reply the broker has not acknowledged is never forgotten", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery({ journalMaxBytes: 1 * MIB });
    bench.brokerUp = false;
    const data = "x".repeat(200 * 1024);
    for (let i = 0; i < 12; i++) { // 2.4 MiB of requests, all answered, none acknowledged
      const taken = delivery.accept(
        new TextEncoder().encode(JSON.stringify({ id: `u${i}`, action: "info", data })),
      );
      await settle();
      await taken;
    }
    delivery.accept(new TextEncoder().encode(JSON.stringify({ id: "u0", action: "info", data })));
    await settle();
    assertEquals(
      bench.logs.lines.filter((line) => line.includes("action u0 was already answered")).length,
      1,
      "u0 asked again is known: answered from its stored reply, not taken as new",
    );
    bench.brokerUp = true;
    await delivery.flush();
    await settle();
    const counts = Array.from({ length: 12 }, (_, i) => bench.responses(`u${i}`).length);
    assertEquals(
      counts,
      [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      "each answered; u0 twice (it was asked twice)",
    );
  });
});
