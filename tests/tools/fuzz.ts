/** `deno task fuzz [--seed N]`: the full fuzz run (10,000 DMS payloads and 10,000 NATS requests). */
import { parseArgs } from "node:util";

const { values } = parseArgs({ args: Deno.args, options: { seed: { type: "string" } } });
const status = await new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", new URL("../e2e/fuzz_test.ts", import.meta.url).pathname],
  env: { RELIABILITY_FULL: "1", ...(values.seed ? { FUZZ_SEED: values.seed } : {}) },
}).spawn().status;
Deno.exit(status.code);
