import { assertEquals, assertOk } from "../../support/assert.ts";
import { Outbox, type OutboxEntry } from "../../../lib/dms/outbox.ts";
import { ActionJournal, JOURNAL_KEEP_COUNT, JOURNAL_KEEP_MS } from "../../../lib/dms/journal.ts";
import { forgetEnrollment, openAgentDb } from "../../../lib/store/agent_db.ts";
import { createLogger, MemorySink } from "../../../lib/log.ts";
import { FakeClock } from "../../support/fake_clock.ts";

const quiet = () => createLogger("test", { sink: new MemorySink() });
const outboxOptions = (publish: (entry: OutboxEntry) => Promise<void>) => ({
  publish,
  log: quiet(),
  clock: new FakeClock(),
  backoff: { initialMs: 100, maxMs: 1000 },
});

async function withDb(fn: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/agent.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("outbox: in order; a failed publish keeps it and everything behind it, across a reopen", async () => {
  await withDb(async (path) => {
    const published: string[] = [];
    let up = false;
    const publish = (entry: OutboxEntry) => {
      if (!up) return Promise.reject(new Error("not connected"));
      published.push(entry.payload);
      return Promise.resolve();
    };
    const db = await openAgentDb(path, quiet());
    const outbox = new Outbox(db, outboxOptions(publish));
    outbox.add("t", "1");
    outbox.add("t", "2");
    await outbox.flush();
    assertEquals([published, outbox.depth], [[], 2]);
    db.close();

    const reopened = await openAgentDb(path, quiet());
    const again = new Outbox(reopened, outboxOptions(publish));
    up = true;
    const seq = again.add("t", "3");
    const acknowledged = again.acknowledged(seq);
    await again.flush();
    await acknowledged;
    assertEquals([published, again.depth], [["1", "2", "3"], 0]);
    reopened.close();
  });
});

Deno.test("journal: a known id is not accepted twice; done entries keep their response; unfinished ones resume", async () => {
  await withDb(async (path) => {
    const db = await openAgentDb(path, quiet());
    const journal = new ActionJournal(db);
    const request = { id: "a1", action: "install", snap: "hello", data: "" };
    assertEquals(journal.accept(request, 1000), { fresh: true });
    assertEquals(journal.accept(request, 1001).fresh, false);
    journal.markStarted("a1", 1002, { change: 57, ready: true });
    assertEquals(journal.unfinished().map((e) => [e.request.id, e.state, e.startedAt, e.baselineChange]), [[
      "a1",
      "started",
      1002,
      57,
    ]]);
    journal.complete("a1", { topic: "devices/pub/d", payload: '{"id":"a1"}' });
    const repeat = journal.accept(request, 1003);
    assertEquals(repeat.fresh ? undefined : repeat.entry.response, '{"id":"a1"}');
    assertEquals(journal.unfinished(), []);
    assertEquals(
      new Outbox(db, outboxOptions(() => Promise.resolve())).depth,
      1,
      "the response is queued with it",
    );
    db.close();
  });
});

Deno.test("journal: bounded to 7 days and 10,000 handled ids", async () => {
  await withDb(async (path) => {
    const db = await openAgentDb(path, quiet());
    const journal = new ActionJournal(db);
    const request = (id: string) => ({ id, action: "list", snap: "", data: "" });
    journal.accept(request("old"), 0);
    journal.complete("old", { topic: "t", payload: "{}" });
    for (let i = 0; i < JOURNAL_KEEP_COUNT + 300; i++) {
      journal.accept(request(`n${i}`), JOURNAL_KEEP_MS + 10 + i);
      journal.complete(`n${i}`, { topic: "t", payload: "{}" });
    }
    assertEquals(journal.get("old"), undefined, "older than 7 days");
    assertOk(journal.size() <= JOURNAL_KEEP_COUNT + 100, `${journal.size()} kept`);
    assertEquals(journal.get(`n${JOURNAL_KEEP_COUNT + 299}`)?.state, "done");
    db.close();
  });
});

Deno.test("a corrupt database is moved aside, reported and recreated", async () => {
  await withDb(async (path) => {
    await Deno.writeTextFile(path, "this is not an sqlite database, just garbage ".repeat(200));
    const logs = new MemorySink();
    const db = await openAgentDb(path, createLogger("test", { sink: logs }));
    new ActionJournal(db).accept({ id: "x", action: "list", snap: "", data: "" }, 1);
    db.close();
    const dir = path.slice(0, path.lastIndexOf("/"));
    assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("agent.db.corrupt-")).length, 1);
    assertOk(
      logs.records({ level: "error", message: /agent\.db is unusable .*moved to .*recreated/ }).length === 1,
    );
  });
});

Deno.test("forgetting an enrollment drops its queued responses and required snaps, keeps the journal", async () => {
  await withDb(async (path) => {
    const db = await openAgentDb(path, quiet());
    const journal = new ActionJournal(db);
    journal.accept({ id: "a1", action: "list", snap: "", data: "" }, 1);
    journal.complete("a1", { topic: "devices/pub/old", payload: "{}" });
    db.prepare("INSERT INTO required_snaps (name, channel, requested_at) VALUES ('htop', 'latest/stable', 1)")
      .run();
    assertEquals(forgetEnrollment(db), { responses: 1, requiredSnaps: 1 });
    assertEquals(new Outbox(db, outboxOptions(() => Promise.resolve())).depth, 0);
    assertEquals(journal.get("a1")?.state, "done");
    db.close();
  });
});

Deno.test("a second process cannot open the agent database; the first one's file is left alone, not taken for corrupt", async () => {
  await withDb(async (path) => {
    const first = await openAgentDb(path, quiet());
    new ActionJournal(first).accept({ id: "kept", action: "list", snap: "", data: "" }, 1);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openAgentDb } from "${new URL("../../../lib/store/agent_db.ts", import.meta.url)}";
         import { createLogger } from "${new URL("../../../lib/log.ts", import.meta.url)}";
         await openAgentDb(${JSON.stringify(path)}, createLogger("second")).then(
           () => console.log("opened"), (error) => console.log("refused: " + error.message));`,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const result = await child.output();
    const output = new TextDecoder().decode(result.stdout);
    const log = new TextDecoder().decode(result.stderr);
    assertOk(/refused: .*locked/.test(output), output);
    assertEquals(/unusable|moved to/.test(log), false, `the second process took it for corrupt: ${log}`);
    const dir = path.slice(0, path.lastIndexOf("/"));
    assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.includes("corrupt")).length, 0);
    assertEquals(new ActionJournal(first).get("kept")?.state, "accepted");
    first.close();
  });
});

Deno.test("journal: a commit that fails after its data reached the file counts as recorded; one that did not, throws", async () => {
  await withDb(async (path) => {
    const db = await openAgentDb(path, quiet());
    let failCommit: "after" | "before" | undefined;
    // the database as the journal sees it: COMMIT may report an error (an fsync that fails) after or before it landed
    const flaky = new Proxy(db, {
      get(target, key) {
        if (key !== "exec") return Reflect.get(target, key).bind(target);
        return (sql: string) => {
          if (sql === "COMMIT" && failCommit === "after") {
            target.exec(sql);
            throw new Error("disk I/O error");
          }
          if (sql === "COMMIT" && failCommit === "before") throw new Error("disk I/O error");
          return target.exec(sql);
        };
      },
    });
    const journal = new ActionJournal(flaky);
    failCommit = "after";
    assertEquals(journal.accept({ id: "c1", action: "list", snap: "", data: "" }, 1000), { fresh: true });
    failCommit = "before";
    let thrown = false;
    try {
      journal.accept({ id: "c2", action: "list", snap: "", data: "" }, 1001);
    } catch {
      thrown = true;
    }
    failCommit = undefined;
    assertEquals([thrown, journal.get("c1")?.state, journal.get("c2")], [true, "accepted", undefined]);
    db.close();
  });
});

Deno.test("the agent database commits durably (synchronous=FULL), in WAL, held by one process", async () => {
  await withDb(async (path) => {
    const db = await openAgentDb(path, quiet());
    const pragma = (name: string) =>
      Object.values(db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>)[0];
    assertEquals([pragma("synchronous"), pragma("journal_mode"), pragma("locking_mode")], [
      2,
      "wal",
      "exclusive",
    ]);
    db.close();
  });
});
