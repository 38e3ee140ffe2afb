/**
 * Request fields are bounded (docs/protocol.md §2): an `id` over 256 characters or an `action` over 64 is refused
 * with one error reply whose id and action are cut to those bounds; it never runs, and nothing longer than the
 * bounds reaches the journal.
 */
import { assertEquals, assertMatch } from "../../support/assert.ts";
import { withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";

const LONG_ID = "i".repeat(255) + "x".repeat(10_000 - 255);

Deno.test("an id over 256 characters gets one refusal (id cut to 256), never runs, never journalled whole", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    bench.send({ id: LONG_ID, action: "device" });
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, []);
    assertEquals(bench.published.length, 1, "one reply");
    const [reply] = bench.published.map((m) => m.payload);
    assertEquals([reply.id, reply.action, reply.success], [LONG_ID.slice(0, 256), "device", false]);
    assertMatch(reply.message as string, /^invalid request: "id" is 10000 characters long \(limit 256\)$/);
    const longest = bench.db.prepare(
      "SELECT MAX(LENGTH(id)) AS id, MAX(LENGTH(request)) AS request FROM actions",
    )
      .get() as { id: number | null; request: number | null };
    assertEquals((longest.id ?? 0) <= 256, true, `journalled id of ${longest.id} characters`);
    assertEquals((longest.request ?? 0) < 1024, true, `journalled request of ${longest.request} characters`);
  });
});

Deno.test("an action over 64 characters gets one refusal (action cut to 64) and never runs", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    const action = "a".repeat(5000);
    bench.send({ id: "a1", action });
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, []);
    assertEquals(bench.responses("a1").length, 1);
    const [reply] = bench.responses("a1");
    assertEquals([reply.action, reply.success], [action.slice(0, 64), false]);
    assertMatch(reply.message as string, /^invalid request: "action" is 5000 characters long \(limit 64\)$/);
  });
});

Deno.test("an id of exactly 256 and an action of exactly 64 characters are within bounds", async () => {
  await withDelivery(async (bench) => {
    const delivery = bench.delivery();
    const id = "k".repeat(256);
    bench.send({ id, action: "device" });
    bench.send({ id: "a2", action: "b".repeat(64) });
    await delivery.idle();
    await settle();
    assertEquals(bench.ran, [id, "a2"]);
  });
});
