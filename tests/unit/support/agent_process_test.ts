import { agentArgv } from "../../support/agent_process.ts";
import { assertEquals } from "../../support/assert.ts";

const v8 = (argv: string[]) => argv.filter((arg) => arg.startsWith("--v8-flags"));

// deno adds every --v8-flags on its command line together: a bench row "without flag X" that only appended its
// own list would still run with X.
Deno.test("the agent's command line: V8 flags given replace the start task's; an empty list runs without any", () => {
  const start = v8(agentArgv(["run"]));
  assertEquals(start.length, 1, "the start task has its flags");
  assertEquals(v8(agentArgv(["run"], ["--v8-flags=--lite-mode"])), ["--v8-flags=--lite-mode"]);
  assertEquals(v8(agentArgv(["run"], ["--v8-flags="])), []);
  assertEquals(v8(agentArgv(["run"], ["--inspect=127.0.0.1:9229"])), start, "other flags leave them alone");
});
