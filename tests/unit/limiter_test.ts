import { assertEquals } from "../support/assert.ts";
import { ConcurrencyLimit } from "../../lib/limiter.ts";

Deno.test("when turns are scarce, a task of priority first runs before the yielding ones that waited longer", async () => {
  const limit = new ConcurrencyLimit(1);
  const order: string[] = [];
  const { promise: held, resolve: release } = Promise.withResolvers<void>();
  const running = limit.run(() => held);
  const tasks = [
    limit.run(() => Promise.resolve(void order.push("local 1")), "yielding"),
    limit.run(() => Promise.resolve(void order.push("local 2")), "yielding"),
    limit.run(() => Promise.resolve(void order.push("dms"))),
    limit.run(() => Promise.resolve(void order.push("local 3")), "yielding"),
  ];
  assertEquals(limit.waiting, 4);
  release();
  await Promise.all([running, ...tasks]);
  assertEquals(
    order,
    ["dms", "local 1", "local 2", "local 3"],
    "first, then the yielding ones in arrival order",
  );
  assertEquals([limit.running, limit.waiting], [0, 0]);
});
