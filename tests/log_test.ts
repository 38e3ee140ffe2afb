/** Log lines: one per record, no raw control character from any value, secrets masked. */
import { addSecret, createLogger, escapeControl, MemorySink } from "../lib/log.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

Deno.test("a value from a payload cannot forge a line or put control characters in the journal", () => {
  const sink = new MemorySink();
  const log = createLogger("agent.dms", { sink, timestamps: false });
  const action = "install\u0000\nINFO  agent.dms: action remove succeeded id=forged\u001b[2J\u2028";
  log.info(`action ${action} requested`, { id: "a\tb", snap: "x\ry" });
  assertEquals(sink.lines.length, 1);
  const [line] = sink.lines;
  // deno-lint-ignore no-control-regex -- looking for control characters is the point
  assertOk(!/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(line), line);
  assertEquals(
    line,
    'INFO  agent.dms: action install\\u0000\\u000aINFO  agent.dms: action remove succeeded id=forged\\u001b[2J\\u2028 requested id="a\\tb" snap="x\\ry"',
  );
});

Deno.test("escapeControl leaves printable text, including non-ASCII, alone", () => {
  assertEquals(escapeControl("snap «peer-svc» — 雪 ok"), "snap «peer-svc» — 雪 ok");
  assertEquals(escapeControl("\u0085\u007f"), "\\u0085\\u007f");
});

Deno.test("registered secrets never reach a line, wherever they appear", () => {
  const sink = new MemorySink();
  const log = createLogger("agent", { sink, timestamps: false });
  addSecret("correct horse battery staple");
  log.warn("NATS refused password correct horse battery staple", { pass: "correct horse battery staple" });
  assertEquals(sink.lines, ['WARN  agent: NATS refused password *** pass="***"']);
});
