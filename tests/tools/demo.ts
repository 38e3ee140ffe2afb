/**
 * `deno task demo` — the newcomer's first command. Starts a fake snapd with a handful of snaps, the identity
 * service stub, an MQTT broker with mutual TLS (mosquitto when installed, else an embedded one), then the real
 * agent as a child process; then plays the DMS: waits for the device's health, asks `device` and `list`, and
 * prints each exchange. Stops everything on exit or Ctrl-C.
 *
 *   deno task demo            run the exchange, then stop
 *   deno task demo --keep     keep everything running until Ctrl-C
 */
import { parseArgs } from "node:util";
import { AedesBroker } from "../support/aedes_broker.ts";
import { makeSnap } from "../support/fake_snapd.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import type { TestCA } from "../support/pki.ts";
import { FIXTURE_DEVICE, startWorld, type TestBroker } from "../support/world.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { keep: { type: "boolean" }, embedded: { type: "boolean" } },
});
const color = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
const paint = (code: number) => (text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
const bold = paint(1);
const dim = paint(2);
const cyan = paint(36);
const green = paint(32);

function say(text: string) {
  console.log(text);
}

function step(text: string) {
  say(`${cyan("▶")} ${text}`);
}

function show(label: string, json: unknown) {
  say(`${green("◀")} ${label}`);
  say(dim(JSON.stringify(json, null, 2).split("\n").map((line) => `    ${line}`).join("\n")));
}

async function mosquittoInstalled(): Promise<boolean> {
  try {
    await new Deno.Command("mosquitto", { args: ["-h"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

const DEMO_SNAPS = [
  makeSnap("snapd", { type: "snapd", version: "2.63", revision: "21759", confinement: "strict" }),
  makeSnap("core22", { type: "base", version: "20240408", revision: "1380" }),
  makeSnap("pc", { type: "gadget", version: "22-0.3", revision: "146", channel: "22/stable" }),
  makeSnap("network-manager", {
    version: "1.36.6-7",
    revision: "880",
    channel: "22/stable",
    apps: [
      { name: "networkmanager", daemon: "dbus", "daemon-scope": "system", enabled: true, active: true },
      { name: "nmcli" },
    ],
  }),
  makeSnap("mosquitto", {
    version: "2.0.18",
    revision: "1052",
    apps: [{ name: "mosquitto", daemon: "simple", "daemon-scope": "system", enabled: true, active: true }],
  }),
];

const useMosquitto = !values.embedded && await mosquittoInstalled();
const startBroker = (ca: TestCA): Promise<TestBroker> =>
  useMosquitto ? Mosquitto.start({ ca }) : AedesBroker.start({ ca });

say(bold("iot-agent demo: a device that was never enrolled joins a DMS\n"));
step("starting the test CA, the broker, a fake snapd and the identity service stub …");
const world = await startWorld<TestBroker>({ startBroker, snaps: DEMO_SNAPS });
let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  step("stopping the agent and every service");
  await world.stop();
  Deno.exit(code);
}
Deno.addSignalListener("SIGINT", () => void stop(0));
Deno.addSignalListener("SIGTERM", () => void stop(0));

try {
  say(`  fake snapd        ${world.snapd.socketPath} (${DEMO_SNAPS.length} snaps)`);
  say(
    `  identity service  ${world.identity.url} (device ${
      Object.values(FIXTURE_DEVICE).join("/")
    } pre-registered)`,
  );
  say(
    `  MQTT broker       ${
      useMosquitto ? "mosquitto" : "embedded broker (aedes)"
    } on localhost:${world.broker.port}, mutual TLS`,
  );
  say(`  agent data        ${world.dataDir}`);
  step(`starting the agent: ${bold("deno task start")} (its log lines are prefixed [agent])`);
  world.agent([], { IOTAGENT_LOG_LEVEL: "info" }, "agent");
  const id = await world.online({ timeoutMs: 60_000 });
  const health = await world.dms.health(id);
  show(`health from device ${id} on devices/health/${id}`, health.json);

  step(`DMS sends ${bold("device")} on devices/sub/${id}`);
  const device = await world.dms.request(id, { action: "device", id: "demo-device-1" });
  show(`reply on devices/pub/${id}`, device);

  step(`DMS sends ${bold("list")} on devices/sub/${id}`);
  const list = await world.dms.request(id, { action: "list", id: "demo-list-1" });
  const result = list.result as { snaps: Record<string, unknown>[]; snapListHash: string };
  say(
    `${green("◀")} reply on devices/pub/${id}: version ${list.version}, snapListHash ${
      result.snapListHash.slice(0, 16)
    }…`,
  );
  for (const snap of result.snaps) {
    const services = (snap.services as { name: string; active: boolean }[]).map((s) =>
      `${s.name}${s.active ? " (active)" : ""}`
    );
    say(
      dim(
        `    ${String(snap.name).padEnd(16)} ${String(snap.version).padEnd(12)} rev ${
          String(snap.revision).padEnd(6)
        } ${String(snap.channel || "-").padEnd(14)} ${services.join(", ")}`,
      ),
    );
  }
  if (values.keep) {
    step("everything keeps running; press Ctrl-C to stop");
    await new Promise(() => {});
  }
  await stop(0);
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}`);
  await stop(1);
}
