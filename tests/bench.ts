/**
 * `deno task bench`: change-store throughput and size, and the action journal's cost per action.
 * Prints a table; numbers are for this machine, to compare changes, not to assert anything.
 */
import { ChangeStore } from "../lib/changes/store.ts";
import { ActionJournal } from "../lib/dms/journal.ts";
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

{
  const db = await openAgentDb(`${dir}/agent.db`, log);
  const journal = new ActionJournal(db);
  const count = 2000;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    journal.accept({ id: `a${i}`, action: "install", snap: "hello", data: "" }, Date.now());
    journal.markStarted(`a${i}`, Date.now());
    journal.complete(
      `a${i}`,
      `{"action":"install","id":"a${i}","result":"${i}","success":true}`,
      "devices/pub/d",
    );
  }
  const ms = (performance.now() - started) / count;
  rows.push(["action journal: accept + start + complete, ms per action", ms.toFixed(3)]);
  db.close();
}

await Deno.remove(dir, { recursive: true });
const width = Math.max(...rows.map(([name]) => name.length));
console.log(`${"measure".padEnd(width)} | value`);
console.log(`${"-".repeat(width)}-|-${"-".repeat(10)}`);
for (const [name, value] of rows) console.log(`${name.padEnd(width)} | ${value}`);
