/**
 * `deno task bench`: change-store throughput and size, and the action journal's cost per action.
 * Prints a table; numbers are for this machine, to compare changes, not to assert anything.
 */
import { ChangeStore } from "../lib/changes/store.ts";
import { ActionJournal } from "../lib/dms/journal.ts";
import { Outbox } from "../lib/dms/outbox.ts";
import { createLogger, MemorySink } from "../lib/log.ts";
import { openAgentDb } from "../lib/store/agent_db.ts";
import type { SnapdChange } from "../lib/snapd/types.ts";
import { fixtureResult } from "./support/fixtures.ts";

const log = createLogger("bench", { sink: new MemorySink() });
const templates = fixtureResult<SnapdChange[]>("62"); // real changes, with their tasks
const dir = await Deno.makeTempDir({ prefix: "iot-agent-bench-" });
const rows: [string, string][] = [];

function changeNumber(i: number): SnapdChange {
  const template = templates[i % templates.length];
  return {
    ...template,
    id: String(i + 1),
    "spawn-time": new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
  };
}

async function fileSize(path: string): Promise<number> {
  let total = 0;
  for (const suffix of ["", "-wal"]) total += await Deno.stat(path + suffix).then((s) => s.size, () => 0);
  return total;
}

{
  const path = `${dir}/changes.db`;
  const store = await ChangeStore.open(path, log);
  const count = 10_000;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    store.upsert(changeNumber(i), Date.now());
    if (i % 100 === 99) store.retain(1000); // one retention pass per check, as the logger does
  }
  const seconds = (performance.now() - started) / 1000;
  rows.push(["change store upserts/s (retention 1000, every 100 upserts)", (count / seconds).toFixed(0)]);
  rows.push(["changes kept", String(store.count())]);
  store.close();
  rows.push([
    "change store size at 1000 changes (db + wal, KiB)",
    ((await fileSize(path)) / 1024).toFixed(0),
  ]);
  const again = await ChangeStore.open(path, log);
  const t = performance.now();
  for (let i = 0; i < 1000; i++) again.upsert(changeNumber(count - 1000 + i), Date.now());
  rows.push([
    "change store re-upserts/s of known changes (a check)",
    (1000 / ((performance.now() - t) / 1000)).toFixed(0),
  ]);
  again.close();
}

/** One action's journal writes: accepted, started, done (with its outbox entry), and the outbox entry's removal. */
async function journalCost(synchronous: "FULL" | "NORMAL", count: number): Promise<number> {
  const path = `${dir}/agent-${synchronous}.db`;
  const db = await openAgentDb(path, log);
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  const journal = new ActionJournal(db);
  const outbox = new Outbox(db, () => Promise.resolve(), log);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    journal.accept({ id: `a${i}`, action: "install", snap: "hello", data: "" }, Date.now());
    journal.markStarted(`a${i}`, Date.now(), i);
    journal.complete(`a${i}`, {
      topic: "devices/pub/d",
      payload: `{"action":"install","id":"a${i}","result":"${i}","success":true}`,
    });
    await outbox.flush();
  }
  const ms = (performance.now() - started) / count;
  db.close();
  return ms;
}

rows.push([
  "action journal, durable (synchronous=FULL, the agent's): ms per action",
  (await journalCost("FULL", 500)).toFixed(3),
]);
rows.push([
  "action journal, not durable across a power cut (NORMAL): ms per action",
  (await journalCost("NORMAL", 2000)).toFixed(3),
]);

await Deno.remove(dir, { recursive: true });
const width = Math.max(...rows.map(([name]) => name.length));
console.log(`${"measure".padEnd(width)} | value`);
console.log(`${"-".repeat(width)}-|-${"-".repeat(10)}`);
for (const [name, value] of rows) console.log(`${name.padEnd(width)} | ${value}`);
