import { assertEquals } from "./support/assert.ts";
import { Outbox, type OutboxEntry } from "../lib/dms/outbox.ts";
import { createLogger, MemorySink } from "../lib/log.ts";

Deno.test("entries go out in order; a failed publish keeps it and everything behind it for the next flush", async () => {
  const published: string[] = [];
  let up = false;
  const outbox = new Outbox((entry: OutboxEntry) => {
    if (!up) return Promise.reject(new Error("not connected"));
    published.push(entry.payload);
    return Promise.resolve();
  }, createLogger("test", { sink: new MemorySink() }));
  outbox.add({ topic: "t", payload: "1" });
  outbox.add({ topic: "t", payload: "2" });
  await outbox.flush();
  assertEquals([published, outbox.depth], [[], 2]);
  up = true;
  outbox.add({ topic: "t", payload: "3" });
  await outbox.flush();
  assertEquals([published, outbox.depth], [["1", "2", "3"], 0]);
});
