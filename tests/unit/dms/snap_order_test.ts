/**
 * Per-snap order across a restart (lib/dms/snap_order.ts): the first action on a snap after a restart waits for
 * the changes earlier actions of the agent started and left running — resumed from the journal, delivered again
 * by the broker, or behind a started action that recovery answered with its change. A "kill" leaves the journal
 * as the dead process wrote it; the restart is a second Delivery on the same database.
 */
import { ActionJournal } from "../../../lib/dms/journal.ts";
import { assertEquals } from "../../support/assert.ts";
import { type Bench, withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";

/** `disable` of peer-svc answered at snapd's 202 with change 51, still running, when the agent dies. */
async function killedWhileDisableRuns(bench: Bench): Promise<void> {
  bench.snapd.running = true;
  const first = bench.delivery();
  bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
  await settle();
  assertEquals(bench.responses("d1").map((r) => r.result), ["51"], "answered at the 202");
  first.stop(); // SIGKILL while the snap's queue waits for change 51
}

/** What `accept()` committed for `id` before the process died (journalled, never run). */
function journalled(bench: Bench, request: { id: string; action: string; snap: string }): void {
  new ActionJournal(bench.db).accept({ data: "", ...request }, bench.clock.now());
}

Deno.test("after a restart, an action accepted before the kill waits for the change its snap's previous action left running", async () => {
  await withDelivery(async (bench) => {
    await killedWhileDisableRuns(bench);
    journalled(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.ran.length = 0;

    const restarted = bench.delivery();
    restarted.resume();
    await bench.clock.advance(1000);
    assertEquals(bench.ran, [], "change 51 still runs: the enable waits");
    assertEquals(
      bench.logs.records({
        level: "info",
        message: /^waiting for change 51 of action d1, started before the restart$/,
        fields: { snap: "peer-svc" },
      }).length,
      1,
    );
    bench.snapd.finish("51");
    await bench.clock.advance(400);
    assertEquals(bench.ran, ["e1"], "runs once the disable is done");
    bench.snapd.finish("52");
    await bench.clock.advance(400);
    await restarted.idle();
  });
});

Deno.test("after a restart, a request the broker delivers again waits for that change too; other snaps do not", async () => {
  await withDelivery(async (bench) => {
    await killedWhileDisableRuns(bench);
    bench.ran.length = 0;

    const restarted = bench.delivery();
    restarted.resume();
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" }, true); // never acknowledged: DUP
    bench.send({ id: "o1", action: "disable", snap: "other" });
    await bench.clock.advance(1000);
    assertEquals(bench.ran, ["o1"], "the enable waits for change 51; another snap goes ahead");
    bench.snapd.finish("51");
    await bench.clock.advance(400);
    assertEquals(bench.ran, ["o1", "e1"]);
    for (const id of ["52", "53"]) bench.snapd.finish(id);
    await bench.clock.advance(400);
    await restarted.idle();
  });
});

Deno.test("after a restart, a read-only action on that snap waits too: it does not start early", async () => {
  await withDelivery(async (bench) => {
    await killedWhileDisableRuns(bench);
    bench.ran.length = 0;

    const restarted = bench.delivery();
    restarted.resume();
    bench.send({ id: "i1", action: "info", snap: "peer-svc" });
    await bench.clock.advance(1000);
    assertEquals(bench.ran, [], "the info would read the snap as it was before the disable");
    bench.snapd.finish("51");
    await bench.clock.advance(400);
    assertEquals(bench.ran, ["i1"]);
    await restarted.idle();
  });
});

Deno.test("a started action that recovery answers with its change holds its snap until that change is ready", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    bench.hold.add("d1");
    const first = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    await settle();
    first.stop(); // SIGKILL after the disable's POST reached snapd, before its 202 was read
    bench.snapd.start("peer-svc", "disable-snap"); // 51: what the POST started
    bench.hold.delete("d1");
    bench.ran.length = 0;

    const restarted = bench.delivery();
    restarted.resume();
    await bench.clock.advance(1000);
    assertEquals(bench.responses("d1").map((r) => r.result), ["51"], "recovered, not run again");
    assertEquals(bench.ran, [], "the enable waits for the recovered disable's change");
    bench.snapd.finish("51");
    await bench.clock.advance(400);
    assertEquals(bench.ran, ["e1"]);
    bench.snapd.finish("52");
    await bench.clock.advance(400);
    await restarted.idle();
  });
});

Deno.test("a change in progress that no action of the agent started is not waited for", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    bench.snapd.start("peer-svc", "refresh-snap"); // 51: `snap refresh` on the device
    journalled(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    const restarted = bench.delivery();
    restarted.resume();
    await settle();
    assertEquals(bench.ran, ["e1"], "runs at once; snapd's conflict answer covers someone else's change");
    bench.snapd.finish("51");
    bench.snapd.finish("52");
    await bench.clock.advance(400);
    await restarted.idle();
  });
});

Deno.test("snapd's changes cannot be read after a restart: one warning, and the actions go ahead", async () => {
  await withDelivery(async (bench) => {
    await killedWhileDisableRuns(bench);
    bench.ran.length = 0;
    bench.snapd.failures = Infinity;
    const restarted = bench.delivery();
    restarted.resume();
    bench.send({ id: "l1", action: "list", snap: "peer-svc" });
    await bench.clock.advance(6000);
    assertEquals(bench.ran, ["l1"], "not held for ever");
    assertEquals(
      bench.logs.records({
        level: "warn",
        message: /^snapd's changes in progress cannot be read \(.*connection refused.*\): actions go ahead/,
      }).length,
      1,
    );
    await restarted.idle();
  });
});

Deno.test("a change that ends in Error after its action was answered is warned with the snap, the action and snapd's error, and counted", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    const delivery = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    await settle();
    assertEquals(bench.responses("d1").map((r) => r.result), ["51"], "answered at the 202");
    const err =
      'cannot perform the following tasks:\n- Run configure hook of "peer-svc" snap (exit status 1)';
    bench.snapd.finish("51", "Error");
    Object.assign(bench.snapd.list.find((c) => c.id === "51")!, { err });
    await bench.clock.advance(3000);
    assertEquals(
      bench.logs.records({ level: "warn", message: `change 51 of action d1 on peer-svc failed: ${err}` })
        .length,
      1,
    );
    assertEquals(delivery.changeFailure, {
      count: 1,
      changeId: "51",
      id: "d1",
      snap: "peer-svc",
      error: err,
    });
    delivery.stop();
  });
});
