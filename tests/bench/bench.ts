/**
 * `deno task bench [--real-snapd] [--go-agent PATH] [--quick] [--heap]`: the agent's footprint and latency, measured
 * on the test world — the real agent process (`deno task start`, with its V8 flags), real mosquitto (mutual TLS,
 * TCP_NODELAY as DMS brokers run it), a snapd holding 100 snaps (the fake; with `--real-snapd` Debian's snapd 2.57
 * with 100 small local snaps), a real nats-server — and the stores' throughput.
 *
 * With `--go-agent PATH` the Go agent this one replaces (built by the test bed beside the project) is measured the
 * same way in the same run, on the same broker and snapd. Every target is judged from the run's own figures: met
 * or NOT met. A Go figure that was not measured in the run is shown as a reference, with its date and source, and
 * a target judged against it says so. Each V8 flag of the start task is justified by a row: the agent run without
 * it, its memory saved and its latency cost. Charts (SVG, drawn from the run) go to docs/charts/.
 *
 * Prints one table; a full run (not `--quick`) writes it and the charts into docs/performance.md.
 */
import { parseArgs } from "node:util";
import { ChangeStore } from "../../lib/changes/store.ts";
import { systemClock } from "../../lib/clock.ts";
import { ActionJournal } from "../../lib/dms/journal.ts";
import { Outbox } from "../../lib/dms/outbox.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import type { SnapdChange, SnapdSnap } from "../../lib/snapd/types.ts";
import { openAgentDb } from "../../lib/store/agent_db.ts";
import manifest from "../../deno.json" with { type: "json" };
import { type AgentFigures, type AgentUnderTest, measureAgent, roundTrips } from "../support/bench_agent.ts";
import { preEnroll } from "../support/enrolled_device.ts";
import { capturedSnaps, makeSnap } from "../support/fake_snapd.ts";
import { fixtureResult } from "../support/fixtures.ts";
import { startGoAgent } from "../support/go_agent.ts";
import { growth, type HeapGroup, heapSnapshot } from "../support/heap_snapshot.ts";
import { NatsServer } from "../support/nats_server.ts";
import { mb, memoryOf, percentile } from "../support/proc_stats.ts";
import { startAssertionFront } from "../support/assertion_front.ts";
import { RealSnapd } from "../support/real_snapd.ts";
import { cdf, lineChart } from "../support/svg_chart.ts";
import { fillerNames } from "../support/test_snaps.ts";
import { sleep } from "../support/wait.ts";
import { startWorld, type World } from "../support/world.ts";
import { openSnapd } from "../../lib/adapters/snapd_http.ts";
import { flashWearRows } from "./flash_wear.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    heap: { type: "boolean" },
    "real-snapd": { type: "boolean" },
    "go-agent": { type: "string" },
  },
});
const QUICK = flags.quick === true;
const HEAP = flags.heap === true;
const REAL = flags["real-snapd"] === true;
const GO = flags["go-agent"];
const INSPECT_PORT = 9339;
const N = QUICK
  ? { roundTrips: 50, early: 200, total: 1000, idleSeconds: 5, spawns: 1, nats: 50, flagActions: 200 }
  : {
    roundTrips: 500,
    early: 2000,
    total: 10_000,
    idleSeconds: 60,
    spawns: 5,
    nats: 1000,
    flagActions: 2000,
  };

/**
 * The Go agent's figures from issue 17 (2026-11-30): measured side by side on this machine kind, a real snapd 2.57
 * holding 100 local snaps, the same mosquitto — shown, and judged against, only when `--go-agent` is not given.
 */
const GO_REFERENCE = {
  source: "reference: issue 17, 2026-11-30, real snapd",
  device: { p50: 2.2, p99: 6.7 },
  list: { p50: 90 },
  rssMB: 18,
  spawnMs: 2097,
};

/** A row: what, this agent, the Go agent, the target, and whether it is met. */
type Row = [measure: string, ours: string, go: string, target: string, verdict: string];
const rows: Row[] = [];
const row = (measure: string, ours: string, go = "", target = "", verdict = "") => {
  rows.push([measure, ours, go, target, verdict]);
  console.error(`bench: ${measure}: ${ours}${go ? ` (Go: ${go})` : ""}${verdict ? ` — ${verdict}` : ""}`);
};
/** "met" / "NOT met", and "vs reference" when the other side was not measured in this run. */
const judge = (met: boolean, reference = false) =>
  `${met ? "met" : "NOT met"}${reference ? " (vs reference)" : ""}`;

const quiet = createLogger("bench", { sink: new MemorySink() });
const fixed = (n: number, digits = 1) => n.toFixed(digits);
const k = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));
const p50 = (times: number[]) => percentile(times, 50);
const p99 = (times: number[]) => percentile(times, 99);
const pair = (times: number[]) => `${fixed(p50(times))} / ${fixed(p99(times))}`;
const MB = 1024 * 1024;

/** 100 snaps for the fake: the captured three and 97 like them, with services. */
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

/** The V8 flags of the start task. */
function startV8Flags(): string[] {
  return /--v8-flags=(\S+)/.exec(manifest.tasks.start)?.[1].split(",") ?? [];
}

/** The snapd the agents talk to (its socket), the world around it, and how to stop what is not the world's. */
async function benchWorld(): Promise<{ world: World; socket: string; stop(): Promise<void>; ourId: string }> {
  if (!REAL) {
    const world = await startWorld({ snaps: hundredSnaps() });
    return { world, socket: world.snapd.socketPath, stop: () => Promise.resolve(), ourId: "" };
  }
  // 100 snaps: snapd, the busybox base, peer-svc and 97 fillers (each a small app with a service)
  const real = await RealSnapd.start(["peer-svc", ...fillerNames(97)], { fillers: 97 });
  // a registered device's model and serial assertions, for both agents alike
  const front = await startAssertionFront(real.socketPath);
  const world = await startWorld({ snapdSocket: front.socketPath, configure: false });
  const ourId = "2F0tBenchThisAgent000000000";
  // the real snapd has no serial assertion to enroll with: the device is enrolled already
  await preEnroll(world, { id: ourId, commonName: "bench-device", serial: "PEER0001" });
  const stop = async () => {
    await front.stop();
    await real.stop();
  };
  return { world, socket: front.socketPath, stop, ourId };
}

/** This agent in `world`, started as `deno task start` starts it (its status files on a tmpfs). */
async function thisAgent(
  world: World,
  ourId: string,
  runtime: string,
  v8Flags?: string[],
): Promise<AgentUnderTest> {
  const denoFlags = [
    ...(HEAP ? [`--inspect=127.0.0.1:${INSPECT_PORT}`] : []),
    // replaces the start task's flags (an empty list runs without any)
    ...(v8Flags ? [`--v8-flags=${v8Flags.join(",")}`] : []),
  ];
  const after = world.dms.mark(); // this agent's own health, not an earlier one's
  let process = world.agent([], { XDG_RUNTIME_DIR: runtime }, undefined, denoFlags);
  const id = ourId || await world.online({ timeoutMs: 30_000 });
  if (ourId) await world.dms.health(ourId, { after, timeoutMs: 30_000 });
  return {
    name: "this agent",
    id,
    process: () => process,
    spawn: () => (process = world.agent([], { XDG_RUNTIME_DIR: runtime }, undefined, denoFlags)),
  };
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

/** The rows comparing the two agents, every target judged from the figures. */
function agentRows(ours: AgentFigures, go: AgentFigures | undefined): void {
  const ref = go === undefined;
  const goDevice = go ? { p50: p50(go.device), p99: p99(go.device) } : GO_REFERENCE.device;
  const goList = go ? p50(go.list) : GO_REFERENCE.list.p50;
  const show = (
    measured: string,
    reference: string,
  ) => (go ? measured : `${reference} (${GO_REFERENCE.source})`);
  row(
    "`device` round trip p50 / p99 (ms)",
    pair(ours.device),
    show(go ? pair(go.device) : "", `${goDevice.p50} / ${goDevice.p99}`),
    "p50 and p99 ≤ the Go agent's",
    judge(p50(ours.device) <= goDevice.p50 && p99(ours.device) <= goDevice.p99, ref),
  );
  row(
    "`list` of 100 snaps round trip p50 / p99 (ms)",
    pair(ours.list),
    show(go ? pair(go.list) : "", `${goList} p50`),
    "p50 ≤ 0.75 × the Go agent's",
    judge(p50(ours.list) <= 0.75 * goList, ref),
  );
  row(
    "`info` round trip p50 / p99 (ms)",
    pair(ours.info),
    go ? pair(go.info) : "",
    go ? "p50 ≤ the Go agent's" : "",
    go ? judge(p50(ours.info) <= p50(go.info)) : "",
  );
  const rssRow = (f: AgentFigures) => `${mb(f.rssAt.start)} / ${mb(f.rssAt.early)} / ${mb(f.rssAt.end)}`;
  row(
    `RSS at start / after ${k(N.early)} / after ${k(N.total)} actions (MB)`,
    rssRow(ours),
    show(go ? rssRow(go) : "", `${GO_REFERENCE.rssMB} after the load`),
    `≤ 80 after ${k(N.total)}`,
    judge(ours.rssAt.end <= 80 * MB),
  );
  row(
    `anonymous RSS at start / after ${k(N.early)} / after ${k(N.total)} actions (MB)`,
    `${mb(ours.anonAt.start)} / ${mb(ours.anonAt.early)} / ${mb(ours.anonAt.end)}`,
    go ? `${mb(go.anonAt.start)} / ${mb(go.anonAt.early)} / ${mb(go.anonAt.end)}` : "",
  );
  const grew = ours.rssAt.end - ours.rssAt.early;
  row(
    `RSS growth from ${k(N.early)} to ${k(N.total)} actions (MB)`,
    mb(grew),
    go ? mb(go.rssAt.end - go.rssAt.early) : "",
    "≤ 5",
    judge(grew <= 5 * MB),
  );
  const { first, last } = ours.p99Windows;
  row(
    `\`device\` p99 in the first / last ${k(N.total / 10)} of the run (ms)`,
    `${fixed(first)} / ${fixed(last)}`,
    go ? `${fixed(go.p99Windows.first)} / ${fixed(go.p99Windows.last)}` : "",
    "flat: last ≤ 1.5 × first + 1 ms",
    judge(last <= 1.5 * first + 1),
  );
  row(
    `idle CPU over ${N.idleSeconds} s (%)`,
    fixed(ours.idleCpuPercent, 2),
    go ? fixed(go.idleCpuPercent, 2) : "",
    "≤ 0.5",
    judge(ours.idleCpuPercent <= 0.5),
  );
  row(
    "idle bytes written per minute, status files on tmpfs (KiB)",
    fixed(ours.idleKiBPerMinute),
    go ? fixed(go.idleKiBPerMinute) : "",
    "≤ 8",
    judge(ours.idleKiBPerMinute <= 8),
  );
  const goSpawn = go ? p50(go.spawnMs) : GO_REFERENCE.spawnMs;
  row(
    "spawn → first answered action, enrolled device (ms, median)",
    fixed(p50(ours.spawnMs), 0),
    show(go ? fixed(goSpawn, 0) : "", String(goSpawn)),
    "≤ the Go agent's",
    judge(p50(ours.spawnMs) <= goSpawn, ref),
  );
}

/**
 * The V8 flags of the start task, judged under a device's mix of work — rounds of ten `device`, two `info` and one
 * `list` — run with every flag, with none, and without each one in turn: the memory each saves and what it costs
 * in `device` latency.
 */
async function v8FlagRows(world: World, ourId: string, runtime: string): Promise<void> {
  const mix = [
    "device",
    "device",
    "device",
    "device",
    "device",
    "device",
    "device",
    "device",
    "device",
    "device",
  ]
    .concat(["info", "info", "list"]);
  const measure = async (flagsUsed: string[]) => {
    const agent = await thisAgent(world, ourId, runtime, flagsUsed);
    const device: number[] = [];
    try {
      await roundTrips(world, agent.id, "device", 20);
      for (let done = 0; done < N.flagActions; done += mix.length) {
        for (const action of mix) {
          const times = await roundTrips(world, agent.id, action, 1, action === "info" ? "peer-svc" : "");
          if (action === "device") device.push(...times);
        }
      }
    } catch (error) {
      console.error(
        `bench: the agent (V8 flags: ${flagsUsed.join(",") || "none"}) said last:\n${
          agent.process().tail(60)
        }`,
      );
      throw error;
    }
    await sleep(1000);
    const rss = memoryOf(agent.process().pid).rss;
    await agent.process().stop();
    return { p50: p50(device), rss };
  };
  const all = startV8Flags();
  const withAll = await measure(all);
  const judged = (saved: number, cost: number) => saved >= MB && cost <= 1;
  const shown = (saved: number, cost: number) =>
    `${mb(saved)} MB / ${cost >= 0 ? "+" : ""}${fixed(cost, 2)} ms`;
  row(
    `V8 flags: RSS / \`device\` p50 with every flag, after ${k(N.flagActions)} mixed actions`,
    `${mb(withAll.rss)} MB / ${fixed(withAll.p50, 2)} ms`,
  );
  const none = await measure([]);
  row(
    "V8 flags, all together: RSS saved / `device` p50 cost",
    shown(none.rss - withAll.rss, withAll.p50 - none.p50),
    "",
    "kept only if it saves ≥ 1 MB for ≤ 1 ms",
    judged(none.rss - withAll.rss, withAll.p50 - none.p50) ? "met: justified" : "NOT met: not justified",
  );
  for (const flag of all) {
    const without = await measure(all.filter((f) => f !== flag));
    const saved = without.rss - withAll.rss;
    const cost = withAll.p50 - without.p50;
    row(
      `V8 flag \`${flag}\`: RSS saved / \`device\` p50 cost`,
      shown(saved, cost),
      "",
      "kept only if it saves ≥ 1 MB for ≤ 1 ms",
      judged(saved, cost) ? "met: justified" : "NOT met: not justified",
    );
  }
}

/** snapd's own answer to the read `list` starts with, no agent in between: the floor under `list`. */
async function snapdFloor(socketPath: string): Promise<void> {
  const snapd = openSnapd({ clock: systemClock, socketPath, timeoutMs: 30_000 });
  try {
    await snapd.snaps();
    const times: number[] = [];
    for (let i = 0; i < (QUICK ? 5 : 30); i++) {
      const started = performance.now();
      await snapd.snaps();
      times.push(performance.now() - started);
    }
    row(
      "snapd's own `GET /v2/snaps` (100 snaps), no agent: the floor under `list`, p50 / p99 (ms)",
      pair(times),
    );
  } finally {
    snapd.close();
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
      row("NATS `v1.iot.agent.status` request p50 / p99 (ms)", pair(times));
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
    "",
    "the agent's setting",
  );
  row(
    "journal cost per action, not durable across a power cut (ms)",
    fixed(await journalCost("NORMAL", QUICK ? 100 : 2000), 3),
    "",
    "for comparison",
  );
}

function table(): string {
  const header: Row = ["measure", "this agent", "Go agent", "target", "met?"];
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const line = (r: Row) => `| ${r.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** The charts of the run, into docs/charts/. */
async function charts(ours: AgentFigures, go: AgentFigures | undefined): Promise<string[]> {
  const dir = new URL("../../docs/charts/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const both = (pick: (f: AgentFigures) => [number, number][]) => [
    { name: "this agent", points: pick(ours) },
    ...(go ? [{ name: "Go agent", points: pick(go) }] : []),
  ];
  const written: string[] = [];
  const write = async (name: string, svg: string) => {
    await Deno.writeTextFile(new URL(name, dir), svg);
    written.push(`charts/${name}`);
  };
  await write(
    "device-latency-cdf.svg",
    lineChart(both((f) => cdf(f.device)), {
      title: `\`device\` round trips: share answered within (${
        REAL ? "real snapd" : "fake snapd"
      }, ${N.roundTrips} each)`,
      xLabel: "round trip (ms, log scale)",
      yLabel: "share of requests (%)",
      logX: true,
    }),
  );
  await write(
    "rss-over-run.svg",
    lineChart(both((f) => f.rss.map(([actions, rss]) => [actions, rss / MB])), {
      title: `resident memory over ${k(N.total)} \`device\` actions`,
      xLabel: "actions answered",
      yLabel: "RSS (MB)",
      limit: { y: 80, label: "target: 80 MB" },
    }),
  );
  return written;
}

async function writePage(chartFiles: string[]): Promise<void> {
  const url = new URL("../../docs/performance.md", import.meta.url);
  const machine = `${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;
  const page = await Deno.readTextFile(url).catch(() => "");
  const start = page.indexOf("<!-- bench -->");
  const end = page.indexOf("<!-- /bench -->");
  const how = `\`deno task bench${REAL ? " --real-snapd" : ""}${GO ? " --go-agent …" : ""}\``;
  const images = chartFiles.map((file) => `![${file}](${file})`).join("\n\n");
  const generated = `<!-- bench -->\n\nMeasured by ${how} on ${
    new Date().toISOString().slice(0, 10)
  } (${machine}; ${REAL ? "Debian's snapd 2.57 with 100 local snaps" : "the fake snapd with 100 snaps"}; ${
    GO ? "the Go agent measured in the same run" : "Go figures are references, not measured in this run"
  }):\n\n${table()}\n\n${images}\n\n<!-- /bench -->`;
  const updated = start >= 0 && end > start
    ? page.slice(0, start) + generated + page.slice(end + "<!-- /bench -->".length)
    : `${page}\n${generated}\n`;
  await Deno.writeTextFile(url, updated);
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", url.pathname] }).output();
  console.log("\nwritten to docs/performance.md");
}

const dir = await Deno.makeTempDir({ prefix: "iot-agent-bench-" });
// status files on a tmpfs, as on a device (/run/snap.<name>)
const runtime = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "iot-agent-bench-" });
let ours: AgentFigures;
let go: AgentFigures | undefined;
try {
  const { world, socket, stop, ourId } = await benchWorld();
  try {
    const agent = await thisAgent(world, ourId, runtime);
    const heapAtStart = HEAP ? await heapSnapshot(INSPECT_PORT) : [];
    ours = await measureAgent(world, agent, N);
    if (HEAP) reportHeap(heapAtStart, await heapSnapshot(INSPECT_PORT));
    await agent.process().stop();
    if (GO) {
      const goAgent = await startGoAgent(world, GO, socket);
      try {
        go = await measureAgent(world, {
          name: "Go agent",
          id: goAgent.id,
          process: () => goAgent.child,
          spawn: () => goAgent.respawn(),
        }, N);
      } finally {
        await goAgent.stop();
      }
    }
    agentRows(ours, go);
    await snapdFloor(world.env.IOTAGENT_SNAPD_SOCKET);
    if (!QUICK) await v8FlagRows(world, ourId, runtime);
  } finally {
    await world.stop();
    await stop();
  }
  await natsFigures();
  await storeFigures(dir);
  await flashWearRows((measure, ours, target, met) => row(measure, ours, "", target, judge(met)), {
    perKind: QUICK ? 10 : 100,
    idleSeconds: N.idleSeconds,
  });
} finally {
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(runtime, { recursive: true });
}
console.log(table());
if (!QUICK) await writePage(await charts(ours!, go));
Deno.exit(0);
