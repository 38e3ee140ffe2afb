import { assertEquals } from "../../support/assert.ts";
import { withDelivery } from "../../support/delivery_bench.ts";
import { settle } from "../../support/fake_clock.ts";

const encode = (request: Record<string, string>) =>
  new TextEncoder().encode(JSON.stringify({ snap: "", data: "", ...request }));

Deno.test("beyond actions.max-waiting the next message is held (no PUBACK) until an action is answered", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("a1");
    bench.hold.add("a2");
    const delivery = bench.delivery({ waiting: { maxActions: 2, maxBytes: 1 << 20 } });
    assertEquals(delivery.accept(encode({ id: "a1", action: "disable", snap: "s1" })), undefined);
    assertEquals(delivery.accept(encode({ id: "a2", action: "disable", snap: "s2" })), undefined);
    await settle();
    let taken = false;
    const held = delivery.accept(encode({ id: "a3", action: "device" }));
    held!.then(() => (taken = true));
    await settle();
    assertEquals(
      [taken, bench.ran],
      [false, ["a1", "a2"]],
      "the third waits at the broker: not run, not recorded",
    );
    bench.held.get("a1")!();
    await settle();
    assertEquals(taken, true, "taken once an action was answered, which needs no incoming packet");
    await settle();
    assertEquals(bench.responses("a3").length, 1);
  });
});

Deno.test("beyond actions.max-waiting-bytes the next message is held; one large action alone always goes in", async () => {
  await withDelivery(async (bench) => {
    bench.hold.add("big");
    const delivery = bench.delivery({ waiting: { maxActions: 100, maxBytes: 1024 } });
    assertEquals(
      delivery.accept(encode({ id: "big", action: "setconf", snap: "s1", data: "x".repeat(4096) })),
      undefined,
    );
    await settle();
    const held = delivery.accept(encode({ id: "small", action: "device" }));
    assertEquals(held instanceof Promise, true);
    bench.held.get("big")!();
    await held;
    await settle();
    assertEquals(bench.responses("small").length, 1);
  });
});
