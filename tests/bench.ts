/**
 * `deno task bench`: the agent's footprint and latency budget, measured on the test world — the real agent
 * process, real mosquitto (mutual TLS, TCP_NODELAY as DMS brokers run it), a fake snapd holding 100 snaps, a real
 * nats-server — plus the stores' throughput. Prints one table and writes it to docs/performance.md with the
 * targets beside it. `--quick` runs every measure briefly (a smoke run for CI; its figures mean little) and writes
 * nothing.
 *
 * The figures are this machine's; they compare versions of the agent, and the targets are checked by reading the
 * table, not by assertions.
 */
import { parseArgs } from "node:util";
import { ChangeStore } from "../lib/changes/store.ts";
import { systemClock } from "../lib/clock.ts";
import { DEFAULT_NATS_PASSWORD } from "../lib/settings.ts";
import { ActionJournal } from "../lib/dms/journal.ts";
import { Outbox } from "../lib/dms/outbox.ts";
import { createLogger, MemorySink } from "../lib/log.ts";
import { connectNats } from "../lib/nats/transport.ts";
import type { SnapdChange, SnapdSnap } from "../lib/snapd/types.ts";
import { openAgentDb } from "../lib/store/agent_db.ts";
import { capturedSnaps, makeSnap } from "./support/fake_snapd.ts";
import { fixtureResult } from "./support/fixtures.ts";
import { growth, type HeapGroup, heapSnapshot } from "./support/heap_snapshot.ts";
import { NatsServer } from "./support/nats_server.ts";
import { bytesWrittenBy, cpuSecondsOf, mb, memoryOf, percentile } from "./support/proc_stats.ts";
import { sleep } from "./support/wait.ts";
import { startWorld, type World } from "./support/world.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, heap: { type: "boolean" } },
});
const QUICK = flags.quick === true;
/** `--heap`: also take heap snapshots at start and after the run, and print what grew. */
const HEAP = flags.heap === true;
const INSPECT_PORT = 9339;
const N = QUICK
  ? { roundTrips: 50, early: 200, total: 1000, idleSeconds: 5, spawns: 1, nats: 50 }
  : { roundTrips: 500, early: 2000, total: 10_000, idleSeconds: 60, spawns: 5, nats: 1000 };

/** A row: what, the measured value, the target (or the Go agent's figure) to read it against. */
type Row = [measure: string, value: string, target: string];
const rows: Row[] = [];
const row = (measure: string, value: string, target = "") => {
  rows.push([measure, value, target]);
  console.error(`bench: ${measure}: ${value}`);
};

const quiet = createLogger("bench", { sink: new MemorySink() });
const fixed = (n: number, digits = 1) => n.toFixed(digits);
const k = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));

/** 100 snaps: the captured three and 97 like them, with services. */
function hundredSnaps(): SnapdSnap[] {
  const snaps = capturedSnaps();
  for (let i = snaps.length; i < 100; i++) {
    snaps.push(makeSnap(`bench-snap-${i}`, {
      revision: String(i),
      apps: [{ name: "daemon", daemon: "simple", active: true, enabled: true }],
    }));
  }
  return snaps;
}

/** Round-trip times of `count` requests of one action, in ms. */
async function roundTrips(
  world: World,
  id: string,
  action: string,
  count: number,
  snap = "",
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const reply = await world.dms.request(id, { action, snap });
    times.push(performance.now() - started);
    if (reply.success !== true) throw new Error(`${action} failed: ${JSON.stringify(reply)}`);
  }
  return times;
}

const p = (times: number[]) => `${fixed(percentile(times, 50))} / ${fixed(percentile(times, 99))}`;

async function agentFigures(): Promise<void> {
  const world = await startWorld({ snaps: hundredSnaps() });
  // status files on a tmpfs, as on a device (/run/snap.<name>)
  const runtime = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "iot-agent-bench-" });
  try {
    const agent = world.agent(
      [],
      { XDG_RUNTIME_DIR: runtime },
      undefined,
      HEAP ? [`--inspect=127.0.0.1:${INSPECT_PORT}`] : [],
    );
    const id = await world.online({ timeoutMs: 30_000 });
    await roundTrips(world, id, "device", 20); // warm-up
    await sleep(2000);
    const atStart = memoryOf(agent.pid);
    const heapAtStart = HEAP ? await heapSnapshot(INSPECT_PORT) : [];

    const device = await roundTrips(world, id, "device", N.roundTrips);
    row("`device` round trip p50 / p99 (ms)", p(device), "p99 ≤ 5 (Go: 1.9 / 6.9)");
    row(
      "`list` of 100 snaps round trip p50 / p99 (ms)",
      p(await roundTrips(world, id, "list", N.roundTrips / 5)),
      "Go: 85 p50",
    );
    row(
      "`info` round trip p50 / p99 (ms)",
      p(await roundTrips(world, id, "info", N.roundTrips / 5, "peer-svc")),
    );

    const windows: number[][] = [];
    let done = 20 + N.roundTrips * 1.4;
    let atEarly = atStart;
    while (done < N.total) {
      const batch = Math.min(N.total / 10, N.total - done);
      windows.push(await roundTrips(world, id, "device", batch));
      done += batch;
      if (done >= N.early && atEarly === atStart) atEarly = memoryOf(agent.pid);
    }
    const atEnd = memoryOf(agent.pid);
    if (HEAP) reportHeap(heapAtStart, await heapSnapshot(INSPECT_PORT));
    row(
      `RSS at start / after ${k(N.early)} / after ${k(N.total)} actions (MB)`,
      `${mb(atStart.rss)} / ${mb(atEarly.rss)} / ${mb(atEnd.rss)}`,
      "≤ 80 after 10k (Go: 18)",
    );
    row(
      `anonymous RSS at start / after ${k(N.early)} / after ${k(N.total)} actions (MB)`,
      `${mb(atStart.anon)} / ${mb(atEarly.anon)} / ${mb(atEnd.anon)}`,
      "≤ 32 after 10k",
    );
    row(`RSS growth from ${k(N.early)} to ${k(N.total)} actions (MB)`, mb(atEnd.rss - atEarly.rss), "≤ 5");
    row(
      `\`device\` p99 in the first / last ${k(N.total / 10)} of the run (ms)`,
      `${fixed(percentile(windows[0], 99))} / ${fixed(percentile(windows.at(-1)!, 99))}`,
      "≤ 5, flat",
    );

    await sleep(5000); // let the last responses' bookkeeping finish
    const cpu = cpuSecondsOf(agent.pid);
    const written = bytesWrittenBy(agent.pid);
    await sleep(N.idleSeconds * 1000);
    const idleCpu = (cpuSecondsOf(agent.pid) - cpu) / N.idleSeconds * 100;
    const idleWrites = (bytesWrittenBy(agent.pid) - written) / (N.idleSeconds / 60) / 1024;
    row(`idle CPU over ${N.idleSeconds} s (%)`, fixed(idleCpu, 2), "≈ 0");
    row("idle bytes written per minute, status files on tmpfs (KiB)", fixed(idleWrites), "≤ 8 (Go: ≈ 0)");

    await agent.stop();
    const spawns: number[] = [];
    for (let i = 0; i < N.spawns; i++) {
      const started = performance.now();
      const next = world.agent([], { XDG_RUNTIME_DIR: runtime });
      const request = world.dms.request(id, { action: "device" }, 30_000); // the broker keeps it for the session
      await request;
      spawns.push(performance.now() - started);
      await next.stop();
    }
    row(
      "spawn → first answered action, enrolled device (ms, median)",
      fixed(percentile(spawns, 50), 0),
      "Go: ≈ 2,100",
    );
  } finally {
    await world.stop();
    await Deno.remove(runtime, { recursive: true });
  }
}

function reportHeap(before: HeapGroup[], after: HeapGroup[]): void {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  console.error("bench: heap at the end, largest groups:");
  for (const g of after.slice(0, 15)) {
    console.error(`  ${kib(g.bytes).padStart(10)} ${String(g.count).padStart(8)}  ${g.name}`);
  }
  console.error("bench: heap growth over the run:");
  for (const g of growth(before, after, 15)) {
    console.error(`  ${kib(g.bytes).padStart(10)} ${String(g.count).padStart(8)}  ${g.name}`);
  }
}

async function natsFigures(): Promise<void> {
  const world = await startWorld();
  const server = await NatsServer.start({ users: [{ user: "snapd", password: DEFAULT_NATS_PASSWORD }] });
  try {
    const agent = world.agent([], { IOTAGENT_NATS_ENABLED: "true", IOTAGENT_NATS_URL: server.url });
    await world.online();
    await agent.waitForLine(/connected to NATS .*; serving/);
    const client = await connectNats({ servers: server.url, user: "snapd", pass: DEFAULT_NATS_PASSWORD });
    try {
      const times: number[] = [];
      for (let i = 0; i < N.nats; i++) {
        const started = performance.now();
        await client.request("v1.iot.agent.status", new TextEncoder().encode("{}"), { timeout: 5000 });
        times.push(performance.now() - started);
      }
      row("NATS `v1.iot.agent.status` request p50 / p99 (ms)", p(times));
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
    await world.stop();
  }
}

async function storeFigures(dir: string): Promise<void> {
  const templates = fixtureResult<SnapdChange[]>("62"); // real changes, with their tasks
  const change = (i: number): SnapdChange => ({
    ...templates[i % templates.length],
    id: String(i + 1),
    "spawn-time": new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
  });
  const store = await ChangeStore.open(`${dir}/changes.db`, quiet);
  const count = QUICK ? 2000 : 10_000;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    store.upsert(change(i), Date.now());
    if (i % 100 === 99) store.retain(1000); // one retention pass per check, as the logger does
  }
  row("change store upserts/s (retention 1000)", fixed(count / ((performance.now() - started) / 1000), 0));
  store.close();

  /** The agent database as the agent opens it, or with `synchronous` overridden for the comparison. */
  const journalCost = async (override: "NORMAL" | undefined, actions: number) => {
    const db = await openAgentDb(`${dir}/agent-${override ?? "as-shipped"}.db`, quiet);
    if (override) db.exec(`PRAGMA synchronous = ${override}`);
    const journal = new ActionJournal(db);
    const outbox = new Outbox(db, {
      publish: () => Promise.resolve(),
      log: quiet,
      clock: systemClock,
      backoff: {},
    });
    const t = performance.now();
    for (let i = 0; i < actions; i++) {
      journal.accept({ id: `a${i}`, action: "install", snap: "hello", data: "" }, Date.now());
      journal.markStarted(`a${i}`, Date.now(), { change: i, ready: true });
      journal.complete(`a${i}`, { topic: "devices/pub/d", payload: `{"id":"a${i}","success":true}` });
      await outbox.flush();
    }
    db.close();
    return (performance.now() - t) / actions;
  };
  row(
    "journal cost per action, durable marks (ms)",
    fixed(await journalCost(undefined, QUICK ? 100 : 500), 3),
    "the agent's setting",
  );
  row(
    "journal cost per action, not durable across a power cut (ms)",
    fixed(await journalCost("NORMAL", QUICK ? 100 : 2000), 3),
    "for comparison",
  );
}

function table(): string {
  const header: Row = ["measure", "value", "target / Go agent"];
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const line = (r: Row) => `| ${r.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

const dir = await Deno.makeTempDir({ prefix: "iot-agent-bench-" });
try {
  await agentFigures();
  await natsFigures();
  await storeFigures(dir);
} finally {
  await Deno.remove(dir, { recursive: true });
}
console.log(table());
if (!QUICK) {
  const machine = `${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;
  const page = await Deno.readTextFile(new URL("../docs/performance.md", import.meta.url)).catch(() => "");
  const start = page.indexOf("<!-- bench -->");
  const end = page.indexOf("<!-- /bench -->");
  const generated = `<!-- bench -->\n\nMeasured by \`deno task bench\` on ${
    new Date().toISOString().slice(0, 10)
  } (${machine}):\n\n${table()}\n\n<!-- /bench -->`;
  const updated = start >= 0 && end > start
    ? page.slice(0, start) + generated + page.slice(end + "<!-- /bench -->".length)
    : `${page}\n${generated}\n`;
  await Deno.writeTextFile(new URL("../docs/performance.md", import.meta.url), updated);
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", new URL("../docs/performance.md", import.meta.url).pathname],
  }).output();
  console.log("\nwritten to docs/performance.md");
}
Deno.exit(0);
