/**
 * The delivery unit's guarantees with fakes and a fake clock — no broker, no snapd process, no sleeps: one
 * response per id across redeliveries and restarts, per-snap order, exact crash recovery (including the probe
 * that answered an action with the previous action's change), lookups that fail, storage that fails.
 * A "restart" is a second Delivery on the same database after the first was abandoned mid-action, which is
 * what the process sees after SIGKILL.
 */
import { ActionJournal } from "../../../lib/dms/journal.ts";
import { assertEquals, assertIncludes, assertOk } from "../../support/assert.ts";
import { type Bench, withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";

/** A delivery that was running `id` when the process died: marked started, its request maybe sent. */
async function killedWhileRunning(bench: Bench, request: { id: string; action: string; snap: string }) {
  bench.hold.add(request.id);
  const first = bench.delivery();
  bench.send(request);
  await settle();
  assertEquals(bench.ran.at(-1), request.id, "the first run reached the action");
  first.stop(); // SIGKILL: the held run never returns
  bench.hold.delete(request.id);
  bench.ran.length = 0;
}

Deno.test("a redelivered id gets the stored response and the action runs once", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    await delivery.idle();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    await settle();
    assertEquals(bench.ran, ["d1"]);
    const [first, again] = bench.responses("d1");
    assertEquals([first.success, first.result], [true, "51"]);
    assertEquals(again, first);
  });
});

Deno.test("a redelivery while the action runs is ignored: still one response", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("d1");
    const delivery = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    await settle();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.held.get("d1")!();
    await delivery.idle();
    await settle();
    assertEquals([bench.ran, bench.responses("d1").length], [["d1"], 1]);
    assertEquals(bench.logs.records({ message: /already in progress: ignoring the redelivery/ }).length, 1);
  });
});

Deno.test("a request that cannot run is answered at once, and after a restart only its stored answer is sent", async () => {
  await withDelivery(async (bench) => {
    bench.delivery();
    bench.send({ id: "bad", action: "device", snap: 42 as unknown as string });
    await settle();
    assertEquals(bench.responses("bad").length, 1);
    assertEquals(bench.responses("bad")[0].success, false);
    const restarted = bench.delivery();
    restarted.resume();
    bench.send({ id: "bad", action: "device", snap: 42 as unknown as string });
    await settle();
    assertEquals(bench.ran, [], "never run");
    assertEquals(bench.responses("bad").length, 2);
    assertEquals(bench.responses("bad")[1], bench.responses("bad")[0]);
  });
});

Deno.test("actions on one snap run in arrival order; another snap does not wait for them", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("a1");
    const delivery = bench.delivery();
    bench.send({ id: "a1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "a2", action: "enable", snap: "peer-svc" });
    bench.send({ id: "b1", action: "disable", snap: "peer-bbbase" });
    await settle();
    assertEquals(bench.ran, ["a1", "b1"], "a2 waits behind a1, b1 does not");
    assertEquals(bench.published.map((m) => m.payload.id), ["b1"]);
    bench.held.get("a1")!();
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, ["a1", "b1", "a2"]);
    assertEquals(bench.published.map((m) => m.payload.id), ["b1", "a1", "a2"]);
  });
});

Deno.test("the started mark records snapd's newest change of the snap, read before the request", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.start("peer-svc", "disable-snap"); // 51
    bench.snapd.start("other", "install-snap"); // 52: another snap's, not counted
    bench.hold.add("e1");
    const delivery = bench.delivery();
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    await settle();
    const entry = new ActionJournal(bench.db).get("e1")!;
    assertEquals([entry.state, entry.baselineChange, entry.startedAt], ["started", 51, bench.clock.now()]);
    bench.held.get("e1")!();
    await delivery.idle();
    assertEquals(bench.snapd.reads, 1);
  });
});

Deno.test("recovery: the previous action's change, spawned 300 ms before the mark, is not taken for this one — it runs", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("e0");
    const before = bench.delivery();
    bench.send({ id: "e0", action: "enable", snap: "peer-svc" });
    await settle();
    bench.held.get("e0")!();
    await before.idle(); // change 51 enable-snap, spawned now
    await bench.clock.advance(300);
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" }); // killed before its POST

    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, ["e1"], "the action runs after the restart");
    assertEquals(bench.responses("e1").map((r) => r.result), ["52"], "answered with its own change");
    assertEquals(bench.snapd.list.filter((c) => c.kind === "enable-snap").length, 2);
  });
});

Deno.test("recovery: killed after the request reached snapd, the action is answered with its change and not run again", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.start("peer-svc", "disable-snap"); // 51, before the mark
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.snapd.start("peer-svc", "enable-snap"); // 52: snapd got the request before the kill

    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, [], "not run again");
    assertEquals(bench.responses("e1").map((r) => [r.success, r.result]), [[true, "52"]]);
    assertEquals(
      bench.logs.records({ message: /action e1 had started change 52 before the restart/ }).length,
      1,
    );
  });
});

Deno.test("recovery: a later change of another kind (someone else's) is not this action's", async () => {
  await withDelivery(async (bench) => {
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.snapd.start("peer-svc", "disable-snap"); // 51, e.g. from `snap disable` on the device
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, ["e1"]);
    assertEquals(bench.responses("e1").map((r) => r.result), ["52"]);
  });
});

Deno.test("recovery: a lookup that fails is retried with backoff and then succeeds", async () => {
  await withDelivery(async (bench) => {
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.snapd.start("peer-svc", "enable-snap"); // 51, the change it started
    const restarted = bench.delivery();
    restarted.resume(); // reads snapd's changes in progress at once (snap_order.ts); the recovery's reads follow
    bench.snapd.failures = 2;
    bench.snapd.reads = 0;
    await settle();
    assertEquals([bench.snapd.reads, bench.responses("e1").length], [1, 0], "waiting to retry");
    await bench.clock.advance(100);
    await bench.clock.advance(200);
    await restarted.idle();
    await settle();
    assertEquals(bench.snapd.reads, 3);
    assertEquals(bench.ran, []);
    assertEquals(bench.responses("e1").map((r) => r.result), ["51"]);
  });
});

Deno.test("recovery: when snapd's changes cannot be read within the budget, an error is answered and nothing runs", async () => {
  await withDelivery(async (bench) => {
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.snapd.failures = Infinity;
    const restarted = bench.delivery();
    restarted.resume();
    await bench.clock.advance(10_000);
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, [], "never guessed 'not started'");
    const [response] = bench.responses("e1");
    assertEquals(response.success, false);
    assertIncludes(
      response.message as string,
      "cannot tell whether enable reached snapd before the agent restarted",
    );
    assertIncludes(response.message as string, "connection refused");
    assertOk(bench.snapd.reads > 3, `${bench.snapd.reads} attempts`);
  });
});

Deno.test("recovery: a started mark without a baseline (older agent) is answered with an error, not run", async () => {
  await withDelivery(async (bench) => {
    const journal = new ActionJournal(bench.db);
    journal.accept({ id: "old", action: "disable", snap: "peer-svc", data: "" }, bench.clock.now());
    bench.db.prepare("UPDATE actions SET state = 'started', started_at = ? WHERE id = 'old'").run(
      bench.clock.now(),
    );
    const delivery = bench.delivery();
    delivery.resume();
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, []);
    assertIncludes(bench.responses("old")[0].message as string, "without change marks");
  });
});

Deno.test("an action accepted but not started before a kill runs once after the restart", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("a1");
    const first = bench.delivery();
    bench.send({ id: "a1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "a2", action: "enable", snap: "peer-svc" }); // accepted, waiting behind a1
    await settle();
    first.stop();
    bench.hold.delete("a1");
    bench.ran.length = 0;
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, ["a1", "a2"], "a1 had not reached snapd; a2 had not started");
    assertEquals(bench.published.map((m) => m.payload.id), ["a1", "a2"]);
  });
});

Deno.test("before the request, snapd's changes cannot be read: the action is answered with snapd's error and not run", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.failures = Infinity;
    const delivery = bench.delivery();
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    await bench.clock.advance(10_000);
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, []);
    assertEquals(bench.responses("e1")[0].message, "cannot communicate with server: connection refused");
    assertEquals(new ActionJournal(bench.db).get("e1")?.state, "done");
  });
});

Deno.test("a journal write that fails is retried with backoff until it succeeds; the response is not lost", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    bench.db.exec("ALTER TABLE outbox RENAME TO outbox_away"); // the response cannot be stored
    bench.send({ id: "l1", action: "list" });
    await settle();
    assertEquals([bench.ran, bench.published.length], [["l1"], 0]);
    assertEquals(
      bench.logs.records({ level: "warn", message: /storing action state failed: no such table: outbox/ })
        .length,
      1,
    );
    await bench.clock.advance(100);
    assertEquals(bench.logs.records({ message: /storing action state failed again/ }).length, 1);
    bench.db.exec("ALTER TABLE outbox_away RENAME TO outbox");
    await bench.clock.advance(1000);
    await delivery.idle();
    await settle();
    assertEquals(bench.responses("l1").map((r) => r.result), ["ok"]);
    assertEquals(bench.ran, ["l1"], "run once");
    assertEquals(
      bench.logs.records({ message: /storing action state succeeded after 2 failed attempt/ }).length,
      1,
    );
  });
});

Deno.test("responses wait in the outbox while the broker is down and go out in order after the connect", async () => {
  await withDelivery(async (bench) => {
    bench.brokerUp = false;
    const delivery = bench.delivery();
    bench.send({ id: "o1", action: "list" });
    bench.send({ id: "o2", action: "device" });
    await delivery.idle();
    await settle();
    assertEquals([bench.published.length, delivery.outboxDepth], [0, 2]);
    bench.brokerUp = true;
    await delivery.flush();
    assertEquals([bench.published.map((m) => m.payload.id), delivery.outboxDepth], [["o1", "o2"], 0]);
  });
});

Deno.test("unregister: the enrollment is cleared only once the reply was acknowledged", async () => {
  await withDelivery(async (bench) => {
    bench.brokerUp = false;
    const delivery = bench.delivery();
    bench.send({ id: "u1", action: "unregister" });
    await settle();
    assertEquals(bench.unregistered, 0, "not before the broker has the reply");
    bench.brokerUp = true;
    await delivery.flush();
    await delivery.idle();
    assertEquals([bench.responses("u1").length, bench.unregistered], [1, 1]);
  });
});

Deno.test("the next action on a snap waits until the previous change is ready; its reply goes out at the 202", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    const delivery = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    bench.send({ id: "o1", action: "disable", snap: "other" });
    await settle();
    assertEquals(bench.responses("d1").map((r) => r.result), ["51"], "answered at the 202");
    assertEquals(bench.ran, ["d1", "o1"], "the enable waits for the disable change; the other snap does not");
    await bench.clock.advance(1000);
    assertEquals(bench.ran, ["d1", "o1"], "still running: still waiting");
    bench.snapd.finish("51");
    await bench.clock.advance(400);
    assertEquals(bench.ran, ["d1", "o1", "e1"]);
    bench.snapd.finish("52");
    bench.snapd.finish("53");
    await bench.clock.advance(400);
    await delivery.idle();
  });
});

Deno.test("a change that never becomes ready holds its snap for the patience, then the next action goes ahead", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    const delivery = bench.delivery();
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    await bench.clock.advance(4500);
    assertEquals(bench.ran, ["d1"]);
    await bench.clock.advance(1000);
    assertEquals(bench.ran, ["d1", "e1"]);
    assertEquals(
      bench.logs.records({
        level: "warn",
        message:
          /change 51 of action d1 is still not ready after 5 s: the next action on peer-svc goes ahead/,
      })
        .length,
      1,
    );
    bench.snapd.finish("51");
    bench.snapd.finish("52");
    await bench.clock.advance(1000);
    await delivery.idle();
  });
});

Deno.test("a failed action (no change) does not wait; a change that ends in Error releases the snap too", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.running = true;
    const delivery = bench.delivery();
    bench.send({ id: "l1", action: "list", snap: "peer-svc" });
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "e1", action: "enable", snap: "peer-svc" });
    await settle();
    assertEquals(bench.ran, ["l1", "d1"]);
    bench.snapd.finish("51", "Error");
    await bench.clock.advance(100);
    assertEquals(bench.ran, ["l1", "d1", "e1"]);
    bench.snapd.finish("52");
    await bench.clock.advance(100);
    await delivery.idle();
  });
});

Deno.test("storage full: a read-only action is still answered, a change refused and not run; space back, all works", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    const pages = (bench.db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
    bench.db.exec(`PRAGMA max_page_count = ${pages}`); // the disk is full: no page more
    const sent: string[] = [];
    for (let i = 0; i < 50; i++) {
      bench.send({ id: `l${i}`, action: "list" });
      bench.send({ id: `d${i}`, action: "disable", snap: "peer-svc" });
      sent.push(`l${i}`, `d${i}`);
      await settle();
      if (bench.responses(`d${i}`)[0]?.success === false) break;
    }
    const refused = bench.published.map((m) => m.payload).find((p) => p.success === false)!;
    assertIncludes(refused.message as string, "the device's storage is full");
    assertIncludes(refused.message as string, "was not recorded, so it was not run");
    assertEquals(bench.ran.includes(refused.id as string), false, "the refused change never ran");
    const readOnly = bench.published.map((m) => m.payload).filter((p) => p.action === "list");
    assertOk(readOnly.every((p) => p.success === true), "every list answered");
    assertEquals(
      bench.logs.records({ level: "warn", message: /storing action state failed: recording action/ }).length,
      1,
      "said once",
    );

    bench.db.exec("PRAGMA max_page_count = 1073741823"); // space again
    await bench.clock.advance(5000); // the writes that were retrying go through
    bench.send({ id: "after", action: "disable", snap: "peer-svc" });
    await bench.clock.advance(1000);
    await delivery.idle();
    await settle();
    assertEquals(bench.responses("after").map((r) => r.success), [true]);
    for (const id of sent) assertEquals(bench.responses(id).length, 1, `one reply to ${id}, none lost`);
    assertEquals(new ActionJournal(bench.db).get("after")?.state, "done");
    assertEquals(
      (bench.db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check,
      "ok",
    );
  });
});

Deno.test("a broker redelivery (DUP) of an answered id sends nothing more; the DMS asking again gets the stored reply", async () => {
  await withDelivery(async (bench) => {
    const first = bench.delivery();
    bench.send({ id: "j1", action: "disable", snap: "peer-svc" });
    await first.idle();
    await settle();
    first.stop(); // the agent stopped after recording j1, before the broker's PUBACK
    const restarted = bench.delivery();
    bench.send({ id: "j1", action: "disable", snap: "peer-svc" }, true);
    await settle();
    assertEquals(bench.responses("j1").length, 1, "the broker's redelivery adds no reply");
    assertEquals(
      bench.logs.records({ message: /j1 was redelivered by the broker after a restart/ }).length,
      1,
    );
    bench.send({ id: "j1", action: "disable", snap: "peer-svc" }, false);
    await settle();
    assertEquals(bench.responses("j1").length, 2, "the DMS asked again: the stored reply again");
    assertEquals(bench.ran, ["j1"], "run once");
    await restarted.idle();
  });
});

const DAY = 24 * 3_600_000;

/** The device is away for two days; snapd forgets every ready change in the meantime. */
async function longOutage(bench: Bench): Promise<void> {
  await bench.clock.advance(2 * DAY);
  bench.snapd.prune();
}

Deno.test("recovery: the change was pruned during a long outage and the snap shows it done: answered done, not run", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.start("peer-svc", "enable-snap"); // 51, the baseline
    await killedWhileRunning(bench, { id: "d1", action: "disable", snap: "peer-svc" });
    bench.snapd.start("peer-svc", "disable-snap"); // 52: snapd got the request before the kill, and did it
    bench.snapd.snaps.set("peer-svc", "installed"); // disabled
    await longOutage(bench);
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, [], "not run again");
    assertEquals(bench.responses("d1").map((r) => [r.success, r.message]), [[
      true,
      "disable of peer-svc is done (snapd no longer lists its change)",
    ]]);
  });
});

Deno.test("recovery: the change was pruned and the snap's state does not show the action: outcome unknown, not run", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.start("peer-svc", "disable-snap"); // 51, the baseline
    await killedWhileRunning(bench, { id: "e1", action: "enable", snap: "peer-svc" });
    bench.snapd.start("peer-svc", "enable-snap"); // 52: reached snapd, and then failed (undone)
    bench.snapd.finish("52", "Undone");
    bench.snapd.snaps.set("peer-svc", "installed"); // still disabled
    await longOutage(bench);
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, [], "never a second run");
    const [reply] = bench.responses("e1");
    assertEquals(reply.success, false);
    assertIncludes(String(reply.message), "snapd no longer lists the changes of that time");
    assertIncludes(String(reply.message), "outcome unknown");
    assertIncludes(String(reply.message), "it was not run again");
  });
});

Deno.test("recovery: killed before the request, snapd's list pruned empty over two days: not run, outcome unknown", async () => {
  await withDelivery(async (bench) => {
    bench.snapd.snaps.set("peer-svc", "active");
    await killedWhileRunning(bench, { id: "d2", action: "disable", snap: "peer-svc" });
    await longOutage(bench);
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, []);
    assertIncludes(String(bench.responses("d2")[0].message), "outcome unknown");
  });
});

Deno.test("recovery: what proves snapd still remembers — the baseline listed, an older ready change, or a young mark with few changes", async () => {
  // each case: the action was killed before its request; snapd must provably remember, so the action runs
  const cases: [string, (bench: Bench) => Promise<void>][] = [
    ["the baseline change is still listed", async (bench) => {
      bench.snapd.start("peer-svc", "enable-snap"); // 51
      await killedWhileRunning(bench, { id: "x", action: "disable", snap: "peer-svc" });
      await bench.clock.advance(2 * DAY);
    }],
    ["another snap's change, ready before the mark, is still listed", async (bench) => {
      bench.snapd.start("other", "install-snap");
      await bench.clock.advance(1000);
      await killedWhileRunning(bench, { id: "x", action: "disable", snap: "peer-svc" });
      await bench.clock.advance(2 * DAY);
    }],
    ["the mark is an hour old and fewer than 500 changes are ready", async (bench) => {
      await killedWhileRunning(bench, { id: "x", action: "disable", snap: "peer-svc" });
      await bench.clock.advance(3_600_000);
    }],
  ];
  for (const [name, setup] of cases) {
    await withDelivery(async (bench) => {
      await setup(bench);
      const restarted = bench.delivery();
      restarted.resume();
      await restarted.idle();
      await settle();
      assertEquals(bench.ran, ["x"], name);
      assertEquals(bench.responses("x").map((r) => r.success), [true], name);
    });
  }
  // and what does not: 500 ready changes within the hour (snapd prunes by count), none older than the mark
  await withDelivery(async (bench) => {
    bench.snapd.snaps.set("peer-svc", "active");
    await killedWhileRunning(bench, { id: "y", action: "disable", snap: "peer-svc" });
    await bench.clock.advance(1000);
    for (let i = 0; i < 600; i++) bench.snapd.start(`s${i}`, "install-snap");
    bench.snapd.prune(500);
    const restarted = bench.delivery();
    restarted.resume();
    await restarted.idle();
    await settle();
    assertEquals(bench.ran, [], "500 ready changes: snapd may have pruned by count");
    assertIncludes(String(bench.responses("y")[0].message), "outcome unknown");
  });
});

Deno.test("a read-only action on an idle snap starts before the journal's commit (overlapping it); behind a busy snap it waits its turn", async () => {
  await withDelivery(async (bench) => {
    const recordedAtStart = new Map<string, string | undefined>();
    const delivery = bench.delivery();
    bench.onRun = (id) => recordedAtStart.set(id, new ActionJournal(bench.db).get(id)?.state);
    bench.send({ id: "r1", action: "info", snap: "peer-svc" });
    await delivery.idle();
    assertEquals(recordedAtStart.get("r1"), undefined, "asked before the commit");
    bench.hold.add("d1");
    bench.send({ id: "d1", action: "disable", snap: "peer-svc" });
    bench.send({ id: "r2", action: "info", snap: "peer-svc" });
    await settle();
    assertEquals(recordedAtStart.has("r2"), false, "waits behind the disable");
    bench.held.get("d1")!();
    await delivery.idle();
    await settle();
    assertEquals(recordedAtStart.get("r2"), "accepted", "ran in its turn, after the commit");
    assertEquals(bench.ran, ["r1", "d1", "r2"]);
    assertEquals(["r1", "d1", "r2"].map((id) => bench.responses(id).length), [1, 1, 1]);
  });
});
