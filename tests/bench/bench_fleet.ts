/**
 * `deno task bench:fleet [--agents N] [--cluster]`: N real agents (default 50), each with its own device (serial),
 * fake snapd and data directory, against one identity stub and one mosquitto — or, with `--cluster`, a three-node
 * nats-server cluster (JetStream, MQTT over mTLS, sessions replicated to three) whose nodes the identity stub hands
 * out in turn, each agent given the other two in `mqtt.brokers` — the way a fleet meets its services:
 *
 * 1. an enrollment storm: all start at once, and the identity stub answers 503 to the first half of the requests;
 * 2. a broker restart (mosquitto), or one node killed (cluster): how the reconnects spread over time (per 1 s
 *    bucket; the goal is no bucket holding more than 20 % of the fleet), and how long until every agent is
 *    subscribed again and answers an action; on the cluster, where the agents are before and after, and how they
 *    move back once the node returns;
 * 3. memory: the fleet's total and the per-agent resident set.
 *
 * Prints one table and puts it in docs/performance.md (section "Fleet", or "Fleet on a cluster"; `--quick` writes
 * nothing). The agents use the shipped settings (`backoff.initial` 1 s, `backoff.max` 2 min, reconnect spread
 * 10 s, failback interval 1 min).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { Child } from "../support/child.ts";
import { startAgent } from "../support/agent_process.ts";
import { DmsClient } from "../support/dms_client.ts";
import { FakeSnapd } from "../support/fake_snapd.ts";
import { assertionFixture } from "../support/fixtures.ts";
import { IdentityStub } from "../support/identity_stub.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { NatsCluster } from "../support/nats_cluster.ts";
import { TestCA } from "../support/pki.ts";
import { mb, memoryOf, percentile } from "../support/proc_stats.ts";
import { sleep } from "../support/wait.ts";
import { lineChart } from "../support/svg_chart.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    agents: { type: "string", default: "50" },
    quick: { type: "boolean" },
    cluster: { type: "boolean" },
  },
});
/** `--quick`: a smoke run; prints the table, writes nothing. */
const QUICK = values.quick === true;
const COUNT = Number(values.agents);
/** `--cluster`: the fleet on a three-node nats-server cluster instead of one mosquitto. */
const CLUSTER = values.cluster === true;
if (!Number.isInteger(COUNT) || COUNT < 1) throw new RangeError(`--agents must be a positive integer`);

interface Member {
  serial: string;
  snapd: FakeSnapd;
  dir: string;
  agent?: Child;
  id?: string;
}

/** The reconnects per second of the run's disruption, in % of the fleet, for the chart. */
let reconnectChart: { label: string; points: [number, number][] } | undefined;

const rows: [string, string, string][] = [];
const row = (measure: string, value: string, target = "") => {
  rows.push([measure, value, target]);
  console.error(`fleet: ${measure}: ${value}`);
};

/** The time (ms since the epoch) of each agent's first log line matching `pattern` after line `after`. */
function firstTimes(members: Member[], pattern: RegExp, after: Map<Member, number>): number[] {
  return members.map((m) => {
    const line = m.agent!.lines.slice(after.get(m) ?? 0).find((l) => pattern.test(l));
    return line ? Date.parse(line.split(" ")[0]) : NaN;
  });
}

/** Resolves once every agent printed a line matching `pattern` (after its mark). */
async function allPrinted(members: Member[], pattern: RegExp, after: Map<Member, number>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (firstTimes(members, pattern, after).some(Number.isNaN)) {
    if (Date.now() > deadline) {
      const missing = members.filter((_, i) => Number.isNaN(firstTimes(members, pattern, after)[i]));
      throw new Error(`${missing.length} agent(s) never printed ${pattern}:\n${missing[0].agent!.tail(10)}`);
    }
    await sleep(100);
  }
}

const ca = TestCA.create();
/** Device certificates are named in advance on the cluster: its users are known before the DMS connects. */
const commonName = (i: number) => `fleet-device-${i}`;
const broker: Mosquitto | NatsCluster = CLUSTER
  ? await NatsCluster.start(ca, Array.from({ length: COUNT }, (_, i) => `CN=${commonName(i)},O=Test Org`))
  : await Mosquitto.start({ ca });
let issued = 0;
const identity = IdentityStub.start({
  ca,
  mqttHost: "localhost",
  mqttPort: broker.port,
  ...(broker instanceof NatsCluster
    ? { mqttPorts: broker.mqttPorts, commonName: () => commonName(issued++) }
    : {}),
});
identity.onEnrolled = (device) => void broker.grantDevice(device);
const dms = await DmsClient.connect({ port: broker.port, ca, persistent: CLUSTER });
const root = await Deno.makeTempDir({ prefix: "iot-agent-fleet-" });
const caFile = join(root, "broker-ca.pem");
await Deno.writeTextFile(caFile, ca.certPem);
const members: Member[] = [];
try {
  const serialText = assertionFixture("serial-PEER0001.assert");
  for (let i = 0; i < COUNT; i++) {
    const serial = `FLEET${String(i).padStart(4, "0")}`;
    const snapd = FakeSnapd.start();
    // the stub reads the serial header; it does not check signatures
    snapd.assertions.set("serial", serialText.replace("serial: PEER0001", `serial: ${serial}`));
    identity.register({ brand: "peerbrand", model: "peer-model", serial });
    const dir = join(root, serial);
    await Deno.mkdir(join(dir, "data"), { recursive: true });
    await Deno.mkdir(join(dir, "common"), { recursive: true });
    await Deno.writeTextFile(
      join(dir, "data/params"),
      JSON.stringify({ url: identity.url, path: join(dir, "data/.secret") }),
    );
    members.push({ serial, snapd, dir });
  }
  for (let i = 0; i < Math.floor(COUNT / 2); i++) identity.injectFault("unavailable-503");

  // 1. the enrollment storm
  const started = Date.now();
  for (const member of members) {
    member.agent = startAgent(["run"], {
      SNAP_DATA: join(member.dir, "data"),
      SNAP_COMMON: join(member.dir, "common"),
      IOTAGENT_SNAPD_SOCKET: member.snapd.socketPath,
      IOTAGENT_MQTT_CA: caFile,
      IOTAGENT_NATS_ENABLED: "false",
      IOTAGENT_LOG_LEVEL: "info",
      // on the cluster every node is in each agent's list: the one handed out is tried first
      ...(broker instanceof NatsCluster
        ? { IOTAGENT_MQTT_BROKERS: broker.mqttPorts.map((port) => `localhost:${port}`).join(",") }
        : {}),
    });
  }
  const none = new Map<Member, number>();
  await allPrinted(members, /connected to broker/, none, 300_000);
  const enrolled = firstTimes(members, /enrolled as device/, none);
  row(
    `time until all ${COUNT} enrolled (s)`,
    ((Math.max(...enrolled) - started) / 1000).toFixed(1),
    "503 to half at first",
  );
  row("identity requests for the fleet", String(identity.requests.length), `${COUNT} + the refused`);
  for (const member of members) {
    member.id = /enrolled as device (\S+)/.exec(
      member.agent!.lines.find((l) => /enrolled as device/.test(l))!,
    )![1];
  }

  // 2. a broker restart, or a node of the cluster killed
  await sleep(3000);
  if (broker instanceof NatsCluster) await nodeKilled(broker, members);
  else await brokerRestarted(broker, members);

  // 3. memory
  const rss = members.map((m) => memoryOf(m.agent!.pid).rss);
  row("fleet RSS total (MB)", mb(rss.reduce((a, b) => a + b, 0)));
  row("per-agent RSS p50 / max (MB)", `${mb(percentile(rss, 50))} / ${mb(Math.max(...rss))}`, "Go: 18");
} finally {
  await Promise.all(members.map((m) => m.agent?.stop()));
  await dms.close();
  await broker.dispose();
  await identity.stop();
  await Promise.all(members.map((m) => m.snapd.stop()));
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

const header: [string, string, string] = ["measure", "value", "target"];
const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
const table = [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join(
  "\n",
);
console.log(table);
if (QUICK) Deno.exit(0);
const pagePath = new URL("../../docs/performance.md", import.meta.url);
const page = await Deno.readTextFile(pagePath).catch(() => "# Performance\n");
const marker = CLUSTER ? "fleet-cluster" : "fleet";
const chartFile = `charts/${marker}-reconnects.svg`;
if (reconnectChart) {
  await Deno.mkdir(new URL("../../docs/charts/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL(`../docs/${chartFile}`, import.meta.url),
    lineChart([{ name: "reconnects", points: reconnectChart.points }], {
      title: `${COUNT} agents: reconnects per second ${reconnectChart.label}${
        CLUSTER ? " (its agents only)" : ""
      }`,
      xLabel: "seconds",
      yLabel: "share of the fleet (%)",
      bars: true,
      limit: { y: 20, label: "target: at most 20 % in any second" },
    }),
  );
}
const generated = `<!-- ${marker} -->\n\nMeasured by \`deno task bench:fleet --agents ${COUNT}${
  CLUSTER ? " --cluster" : ""
}\` on ${new Date().toISOString().slice(0, 10)}:\n\n${table}\n\n${
  reconnectChart ? `![${chartFile}](${chartFile})\n\n` : ""
}<!-- /${marker} -->`;
const start = page.indexOf(`<!-- ${marker} -->`);
const end = page.indexOf(`<!-- /${marker} -->`);
await Deno.writeTextFile(
  pagePath,
  start >= 0 && end > start
    ? page.slice(0, start) + generated + page.slice(end + `<!-- /${marker} -->`.length)
    : `${page}\n## ${CLUSTER ? "Fleet on a cluster" : "Fleet"}\n\n${generated}\n`,
);
await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", pagePath.pathname] }).output();
Deno.exit(0);

/** The reconnects of `movers` after `since` (ms since the epoch), per 1 s bucket, with the busiest bucket's share. */
function reconnectSpread(movers: Member[], marks: Map<Member, number>, since: number, label: string) {
  const reconnects = firstTimes(movers, /connected to broker/, marks);
  const buckets = new Map<number, number>();
  for (const at of reconnects) {
    const second = Math.floor((at - since) / 1000);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const busiest = Math.max(...buckets.values());
  const sorted = [...buckets.entries()].sort(([a], [b]) => a - b);
  const spread = sorted.map(([s, n]) => `${s}s:${n}`).join(" ");
  row(`reconnects per 1 s bucket ${label}`, spread);
  const last = sorted.at(-1)?.[0] ?? 0;
  reconnectChart = {
    label,
    points: Array.from({ length: last + 1 }, (_, s) => [s, (buckets.get(s) ?? 0) / COUNT * 100]),
  };
  row("busiest 1 s bucket (% of the fleet)", ((busiest / COUNT) * 100).toFixed(0), "≤ 20");
  row(
    `reconnect delay ${label} p50 / p99 / max (s)`,
    [50, 99, 100].map((p) => (percentile(reconnects.map((t) => t - since), p) / 1000).toFixed(1)).join(" / "),
  );
}

/** How long until every agent answers an action, from `since`. */
async function everyAgentAnswers(since: number) {
  const answered = await Promise.all(members.map(async (m) => {
    await dms.request(m.id!, { action: "device" }, 300_000);
    return Date.now();
  }));
  row(
    "time until every agent answers an action again (s)",
    ((Math.max(...answered) - since) / 1000).toFixed(1),
  );
}

async function brokerRestarted(broker: Mosquitto, members: Member[]) {
  const marks = new Map(members.map((m) => [m, m.agent!.mark()] as const));
  const stopped = Date.now();
  await broker.restart();
  await dms.ready();
  const back = Date.now();
  await allPrinted(members, /connected to broker/, marks, 300_000);
  row("broker down for (s)", ((back - stopped) / 1000).toFixed(1));
  reconnectSpread(members, marks, back, "after the broker was back");
  await everyAgentAnswers(back);
}

/** The port each agent is connected to now (its last "connected to broker" line). */
function nodeOf(member: Member): number {
  const line = member.agent!.lines.findLast((l) => /connected to broker localhost:\d+/.test(l))!;
  return Number(/connected to broker localhost:(\d+)/.exec(line)![1]);
}

function perNode(cluster: NatsCluster): string {
  return cluster.mqttPorts.map((port, i) => `n${i + 1}:${members.filter((m) => nodeOf(m) === port).length}`)
    .join(" ");
}

async function nodeKilled(cluster: NatsCluster, members: Member[]) {
  const victim = cluster.mqttPorts[1];
  row("agents per node before", perNode(cluster));
  const movers = members.filter((m) => nodeOf(m) === victim);
  const marks = new Map(members.map((m) => [m, m.agent!.mark()] as const));
  const killed = Date.now();
  await cluster.kill(1);
  await allPrinted(movers, /connected to broker/, marks, 300_000);
  row(`agents that moved (node n2 killed)`, String(movers.length));
  reconnectSpread(movers, marks, killed, "after the node died");
  row("agents per node after", perNode(cluster));
  await everyAgentAnswers(killed);

  const backMarks = new Map(members.map((m) => [m, m.agent!.mark()] as const));
  await cluster.revive(1);
  const revived = Date.now();
  await allPrinted(movers, new RegExp(`connected to broker localhost:${victim}\\b`), backMarks, 300_000);
  const returns = firstTimes(movers, new RegExp(`connected to broker localhost:${victim}\\b`), backMarks);
  row(
    "moved back after the node returned p50 / max (s)",
    [50, 100].map((p) => (percentile(returns.map((t) => t - revived), p) / 1000).toFixed(1)).join(" / "),
    "failback 1 min ± 50 %",
  );
  row("agents per node once it returned", perNode(cluster));
}
