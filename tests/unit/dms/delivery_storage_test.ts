/**
 * Storage failing at every write of an action's life — accept, prune, start mark, answer, outbox insert and
 * removal — injected with sqlite triggers that fail the way a full disk does. Whatever fails, the DMS gets exactly
 * one reply per id, that reply matches what snapd did, the outbox never stalls, and the next action is answered
 * once the fault clears — also after a restart.
 */
import type { DatabaseSync } from "node:sqlite";
import { assertEquals, assertOk } from "../../support/assert.ts";
import { type Bench, withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";

/** Where a write can fail, and the trigger that makes it fail. */
const WRITES: Record<string, string> = {
  "accept (the journal INSERT)": "BEFORE INSERT ON main.actions",
  "prune (forgetting old ids)": "BEFORE DELETE ON main.actions",
  "start mark": "BEFORE UPDATE OF state ON main.actions WHEN NEW.state = 'started'",
  "answer (the journal's done)": "BEFORE UPDATE OF state ON main.actions WHEN NEW.state = 'done'",
  "outbox insert": "BEFORE INSERT ON main.outbox",
  "outbox removal after the PUBACK": "BEFORE DELETE ON main.outbox",
};

function fail(db: DatabaseSync, when: string): void {
  db.exec(`CREATE TEMP TRIGGER fault ${when} BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`);
}

function heal(db: DatabaseSync): void {
  db.exec("DROP TRIGGER IF EXISTS temp.fault");
}

/** The broker's side: a message whose accept threw is not acknowledged, and is delivered again (DUP) later. */
function deliver(
  bench: Bench,
  request: { id: string; action: string; snap: string },
  unacked: typeof request[],
) {
  try {
    bench.send(request);
  } catch {
    unacked.push(request);
  }
}

/** Lets time pass in steps, so retries with backoff get their turns. */
async function pass(bench: Bench, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 250) await bench.clock.advance(250);
  await settle();
}

for (const [write, when] of Object.entries(WRITES)) {
  Deno.test(`storage fails at the ${write}: one reply per id, matching snapd; the next action answered`, async () => {
    await withDelivery(async (bench) => {
      // an id handled long ago, so that the first accept has something to prune
      bench.db.exec(
        `INSERT INTO actions (id, request, state, received_at, response) VALUES ('old', '{}', 'done', 0, '{}')`,
      );
      const first = bench.delivery();
      const unacked: { id: string; action: string; snap: string }[] = [];
      fail(bench.db, when);
      deliver(bench, { id: "a", action: "disable", snap: "peer-svc" }, unacked);
      await pass(bench, 3000);
      heal(bench.db);
      for (const request of unacked) bench.send(request, true);
      await pass(bench, 3000);
      await first.idle();
      const rows = (bench.db.prepare("SELECT COUNT(*) AS n FROM outbox").get() as { n: number }).n;
      assertEquals(rows, 0, "the outbox resumed by itself once the storage worked again");
      deliver(bench, { id: "b", action: "enable", snap: "peer-svc" }, unacked);
      await pass(bench, 3000);
      await first.idle();
      await pass(bench, 1000);
      assertEquals(bench.responses("b").map((r) => r.success), [true], "the next action is answered once");

      first.stop(); // a restart: nothing unfinished may run again, nothing answered may be answered differently
      const second = bench.delivery();
      second.resume();
      await second.flush();
      await pass(bench, 3000);
      await second.idle();

      const replies = bench.responses("a");
      assertEquals(replies.length, 1, `one reply for a: ${JSON.stringify(replies)}`);
      const disables = bench.snapd.list.filter((change) => change.kind === "disable-snap");
      if (replies[0].success) {
        assertEquals(
          disables.map((change) => change.id),
          [replies[0].result],
          "snapd did it once, as answered",
        );
      } else {
        assertOk(
          /not recorded, so it was not run/.test(String(replies[0].message)),
          String(replies[0].message),
        );
        assertEquals(disables, [], "refused, and snapd never asked");
      }
      assertEquals(
        bench.ran.filter((id) => id === "a").length,
        replies[0].success ? 1 : 0,
        "run at most once",
      );
      assertEquals(second.outboxDepth, 0, "nothing left waiting");
    });
  });
}
