/** Log lines: one per record, no raw control character from any value, secrets masked. */
import { addSecret, createLogger, escapeControl, MemorySink } from "../../lib/log.ts";
import { assertEquals, assertOk } from "../support/assert.ts";

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

Deno.test("a secret is masked before it is escaped: passwords holding a quote, a backslash, a newline, non-ASCII", () => {
  const sink = new MemorySink();
  const log = createLogger("agent", { sink, timestamps: false });
  const passwords = ['pa"ss-wörd-1', "back\\slash-2", "two\nlines-3", "ünïcødé 雪-4", 'all"of\\them\n雪-5'];
  for (const password of passwords) addSecret(password);
  for (const password of passwords) {
    log.warn(`refused ${password} by the server`, {
      pass: password,
      error: new Error(`bad password ${password}`),
      nested: { list: [password] },
    });
  }
  const text = sink.lines.join("\n");
  for (const password of passwords) {
    const json = JSON.stringify(password).slice(1, -1);
    for (const form of [password, json, escapeControl(password), escapeControl(json)]) {
      assertEquals(text.includes(form), false, `${JSON.stringify(form)} in ${text}`);
    }
  }
  for (const fragment of ["wörd", "slash-2", "lines-3", "ünïcødé", "them"]) {
    assertEquals(text.includes(fragment), false, `${fragment} in ${text}`);
  }
  assertEquals(sink.lines.length, passwords.length, "one line each");
  assertEquals(
    sink.lines[0],
    'WARN  agent: refused *** by the server pass="***" error="bad password ***" nested={"list":["***"]}',
  );
});

Deno.test("each line comes with its record: level, category, message and fields apart, secrets masked there too", () => {
  const sink = new MemorySink();
  const log = createLogger("agent", { sink, timestamps: false, level: "debug" });
  addSecret("records-hide-this-too");
  log.child("dms").warn("reply not sent", { id: "a1", attempt: 2, note: undefined });
  log.child("mqtt").debug("password records-hide-this-too refused", {
    cause: new Error("records-hide-this-too"),
  });
  log.child("dms").info("reply sent", { id: "a1" });
  assertEquals(sink.records({ category: "agent.dms" }).map((r) => r.message), [
    "reply not sent",
    "reply sent",
  ]);
  assertEquals(sink.records({ level: "warn" }), [
    { level: "warn", category: "agent.dms", message: "reply not sent", fields: { id: "a1", attempt: 2 } },
  ]);
  assertEquals(sink.records({ category: "agent" }).length, 3, "a parent category selects its children");
  assertEquals(sink.records({ category: "agen" }), [], "but not a category that only starts the same");
  assertEquals(sink.records({ fields: { id: "a1" }, message: /sent$/ }).length, 2);
  assertEquals(sink.records({ message: "reply" }), [], "a string is the whole message");
  const [masked] = sink.records({ category: "agent.mqtt" });
  assertEquals([masked.message, masked.fields.cause], ["password *** refused", "***"]);
});

Deno.test("a URL's user name and password never reach a line or a record, though nobody registered them", () => {
  const sink = new MemorySink();
  const log = createLogger("agent", { sink, timestamps: false, level: "debug" });
  log.debug("setting nats.url=nats://snapd:unregistered-pw@nats.lan:4222,tls://u:p%40ss@other:4443 (snap)", {
    server: "nats://snapd:field-pw@nats.lan:4222",
  });
  const [line] = sink.lines;
  for (const secret of ["unregistered-pw", "field-pw", "p%40ss", "snapd:"]) {
    assertOk(!line.includes(secret), line);
    assertOk(!JSON.stringify(sink.records()).includes(secret), JSON.stringify(sink.records()));
  }
  assertEquals(
    line,
    'DEBUG agent: setting nats.url=nats://***@nats.lan:4222,tls://***@other:4443 (snap) server="nats://***@nats.lan:4222"',
  );
});
