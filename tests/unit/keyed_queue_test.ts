import { assertEquals } from "../support/assert.ts";
import { KeyedQueue } from "../../lib/keyed_queue.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("tasks of one key run one at a time in arrival order; other keys do not wait", async () => {
  const queue = new KeyedQueue();
  const events: string[] = [];
  const task = (name: string, ms: number) => async () => {
    events.push(`start ${name}`);
    await sleep(ms);
    events.push(`end ${name}`);
    return name;
  };
  const results = await Promise.all([
    queue.run("a", task("a1", 60)),
    queue.run("a", task("a2", 1)),
    queue.run("b", task("b1", 1)),
  ]);
  assertEquals(results, ["a1", "a2", "b1"]);
  assertEquals(events, ["start a1", "start b1", "end b1", "end a1", "start a2", "end a2"]);
  assertEquals(queue.activeKeys, 0);
});

Deno.test("a failing task does not block the ones behind it", async () => {
  const queue = new KeyedQueue();
  const failed = queue.run("a", () => Promise.reject(new Error("boom")));
  const next = queue.run("a", () => Promise.resolve("ok"));
  await failed.catch(() => {});
  assertEquals(await next, "ok");
  await queue.idle();
});
