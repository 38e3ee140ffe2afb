/**
 * The benchmarks keep working: `deno task bench --quick` and `deno task bench:fleet --quick` run against the test
 * world and print their tables. Smoke only — the figures are read by people (docs/performance.md), not asserted.
 */
import { assertEquals, assertMatch } from "../support/assert.ts";
import { PROJECT_ROOT } from "../support/agent_process.ts";

async function task(...args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", ...args],
    cwd: PROJECT_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assertEquals(output.code, 0, `${text}\n${new TextDecoder().decode(output.stderr).slice(-3000)}`);
  return text;
}

Deno.test({
  name: "deno task bench --quick prints the whole table",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const table = await task("bench", "--quick");
    for (
      const measure of [
        /`device` round trip p50 \/ p99 \(ms\) +\| \d+\.\d \/ \d+\.\d/,
        /anonymous RSS at start/,
        /idle bytes written per minute/,
        /spawn → first answered action/,
        /NATS `v1.iot.agent.status` request/,
        /journal cost per action, durable marks/,
      ]
    ) assertMatch(table, measure);
  },
});

Deno.test({
  name: "deno task bench:fleet --quick runs a small fleet through an enrollment storm and a broker restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const table = await task("bench:fleet", "--agents", "4", "--quick");
    assertMatch(table, /time until all 4 enrolled \(s\)/);
    assertMatch(table, /busiest 1 s bucket/);
    assertMatch(table, /time until every agent answers an action again/);
  },
});
