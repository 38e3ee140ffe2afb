/**
 * The real-snapd tier: the agent against Debian's snapd 2.57 (tests/support/real_snapd.ts) with local test snaps
 * — every DMS action, the ordering sequences the fake once hid (disable→enable, stop→start→restart, setconf),
 * remove→install, the local NATS API, required-install, snapd restarting in a burst of actions, and the change
 * logger and watchdog with a genuinely running change. Store-facing calls fail offline with snapd's own errors,
 * which must reach the DMS as they are.
 *
 * One snapd serves the whole file (it takes seconds to start); each test leaves it as it found it. Where snapd
 * cannot run, every test here is skipped with one line saying why — except under CI=true.
 */
import { join } from "node:path";
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../support/assert.ts";
import { startAgent } from "../support/agent_process.ts";
import type { Child } from "../support/child.ts";
import { preEnroll } from "../support/enrolled_device.ts";
import { NatsServer } from "../support/nats_server.ts";
import { RealSnapd, realSnapdTest } from "../support/real_snapd.ts";
import { sleep, until } from "../support/wait.ts";
import { burstPlan, judgeBurst, sendBurst } from "../support/burst.ts";
import type { SnapdChange } from "../../lib/snapd/types.ts";
import { E2E, startWorld, type World } from "../support/world.ts";

const SKIP = await realSnapdTest();
const TEST = { ...E2E, ...SKIP };
const SNAPS = ["peer-svc", "peer-filler-a", "peer-filler-b", "peer-filler-c"];
const DEVICE_ID = "2F0tRealSnapdDevice00000000";

let shared: Promise<RealSnapd> | undefined;
/** The file's snapd, started by the first test that needs it. */
function realSnapd(): Promise<RealSnapd> {
  return shared ??= RealSnapd.start(SNAPS);
}

/** snapd's REST answer, straight from the socket. */
async function rest<T>(snapd: RealSnapd, path: string): Promise<T> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: snapd.socketPath } });
  try {
    return (await (await fetch(`http://localhost${path}`, { client })).json()).result as T;
  } finally {
    client.close();
  }
}

/** Resolves once snapd has no change in progress. */
async function snapdIdle(snapd: RealSnapd): Promise<void> {
  await until(
    async () => (await rest<unknown[]>(snapd, "/v2/changes?select=in-progress")).length === 0,
    "snapd idle",
  );
}

/** A world whose agent talks to the real snapd; the device is enrolled already (the real snapd has no serial). */
async function withRealWorld(
  fn: (world: World, snapd: RealSnapd, agent: Child) => Promise<void>,
  env: Record<string, string> = {},
) {
  const snapd = await realSnapd();
  const world = await startWorld({ snapdSocket: snapd.socketPath, configure: false });
  try {
    await preEnroll(world, { id: DEVICE_ID, commonName: "real-snapd-device", serial: "PEER0001" });
    const agent = world.agent([], { IOTAGENT_SNAPD_CONFLICT_TIMEOUT: "30s", ...env });
    await world.dms.health(DEVICE_ID, { timeoutMs: 30_000 });
    await fn(world, snapd, agent);
  } finally {
    await world.stop();
    await snapdIdle(snapd).catch(() => {});
  }
}

/** Sends every request at once and returns the replies by id, once all are in. */
async function sendAll(
  world: World,
  requests: { id: string; action: string; snap?: string; data?: string }[],
) {
  const after = world.dms.mark();
  for (const request of requests) {
    await world.dms.send(DEVICE_ID, JSON.stringify({ snap: "", data: "", ...request }));
  }
  const replies: Record<string, Record<string, unknown>> = {};
  for (const { id } of requests) {
    replies[id] = await world.dms.response(DEVICE_ID, id, { after, timeoutMs: 60_000 });
  }
  return replies;
}

const snapOf = (snapd: RealSnapd, name: string) =>
  rest<{ status: string; apps?: { name: string; active?: boolean }[] }>(snapd, `/v2/snaps/${name}`);

Deno.test({
  name: "real snapd: disable then enable back to back ends enabled; stop, start, restart ends active",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, snapd) => {
      const replies = await sendAll(world, [
        { id: "d1", action: "disable", snap: "peer-svc" },
        { id: "e1", action: "enable", snap: "peer-svc" },
      ]);
      assertEquals([replies.d1.success, replies.e1.success], [true, true], JSON.stringify(replies));
      await snapdIdle(snapd);
      assertEquals((await snapOf(snapd, "peer-svc")).status, "active", "enabled, as the DMS asked last");

      const services = await sendAll(world, [
        { id: "s1", action: "stop", snap: "peer-svc", data: "{}" },
        { id: "s2", action: "start", snap: "peer-svc", data: "{}" },
        { id: "s3", action: "restart", snap: "peer-svc", data: '{"services":["peer-svc.daemon"]}' },
      ]);
      for (const id of ["s1", "s2", "s3"]) {
        assertEquals(services[id].success, true, JSON.stringify(services[id]));
      }
      await snapdIdle(snapd);
      const daemon = (await snapOf(snapd, "peer-svc")).apps?.find((a) => a.name === "daemon");
      assertEquals(daemon?.active, true, "running, as the DMS asked last");
      const kinds = (await rest<{ id: string; kind: string; status: string }[]>(
        snapd,
        "/v2/changes?select=all&for=peer-svc",
      )).filter((c) => [replies.d1.result, replies.e1.result, services.s1.result].includes(c.id));
      assertEquals(kinds.map((c) => c.status), ["Done", "Done", "Done"]);
    });
  },
});

Deno.test({
  name:
    "real snapd: setconf of snapd's own settings ends Done; of a snap without a configure hook, in snapd's Error",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, snapd) => {
      const replies = await sendAll(world, [
        { id: "c1", action: "setconf", snap: "system", data: '{"refresh.timer":"mon,10:00"}' },
        { id: "c2", action: "setconf", snap: "peer-svc", data: '{"greeting":"hi"}' },
      ]);
      assertEquals(
        [replies.c1.success, replies.c2.success],
        [true, true],
        "answered at the 202 with the change",
      );
      await snapdIdle(snapd);
      const system = await rest<{ status: string }>(snapd, `/v2/changes/${replies.c1.result}`);
      const hookless = await rest<{ status: string; err: string }>(snapd, `/v2/changes/${replies.c2.result}`);
      assertEquals([system.status, hookless.status], ["Done", "Error"]);
      assertIncludes(hookless.err, 'snap "peer-svc" has no "configure" hook');
      const conf = await world.dms.request(DEVICE_ID, { action: "conf", snap: "system" });
      assertEquals(
        conf.success,
        false,
        "snapd cannot read all of system's settings here: its error passes through",
      );
    });
  },
});

Deno.test({
  name:
    "real snapd: every other action is answered; snapd's own errors (store offline, local snaps) pass through",
  ...TEST,
  async fn() {
    await withRealWorld(async (world) => {
      const ask = (action: string, snap = "", data = "") =>
        world.dms.request(DEVICE_ID, { action, snap, data }, 60_000);
      const list = await ask("list");
      assertEquals(list.success, true);
      const names = (list.result as { snaps: { name: string }[] }).snaps.map((s) => s.name).sort();
      assertEquals(names, [
        "peer-bbbase",
        "peer-filler-a",
        "peer-filler-b",
        "peer-filler-c",
        "peer-svc",
        "snapd",
      ]);
      assertEquals((await ask("info", "peer-svc")).success, true);
      assertEquals((await ask("conf", "peer-svc")).success, true);
      assertEquals((await ask("server")).success, true);
      const device = await ask("device");
      assertEquals(device.success, false, "this snapd has no serial assertion");
      assertMatch(String(device.message), /serial/);

      const install = await ask("install", "hello-world");
      assertEquals(install.success, false);
      assertMatch(String(install.message), /^cannot install "hello-world": .*api\.snapcraft\.io/);
      assertEquals((await ask("refresh", "peer-svc")).message, "cannot perform operation on local snap");
      assertEquals(
        (await ask("switch", "peer-svc", "latest/edge")).message,
        "cannot perform operation on local snap",
      );
      assertEquals(
        (await ask("revert", "peer-svc")).message,
        'cannot revert "peer-svc": no revision to revert to',
      );
      assertEquals((await ask("enable", "nosuch")).message, 'snap "nosuch" is not installed');
      const user = await ask("user", "", JSON.stringify({ action: "create", email: "ops@example.com" }));
      assertEquals(user.message, "system user administration via snapd is not allowed on this system");
      assertEquals((await ask("ack", "", "type: bogus\n\nsig")).success, false);
    });
  },
});

Deno.test({
  name:
    "real snapd: remove then install of a local snap — removed; the install answered with snapd's store error",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, snapd) => {
      try {
        const replies = await sendAll(world, [
          { id: "r1", action: "remove", snap: "peer-filler-c" },
          { id: "i1", action: "install", snap: "peer-filler-c" },
        ]);
        assertEquals(replies.r1.success, true);
        assertEquals(replies.i1.success, false);
        assertMatch(String(replies.i1.message), /^cannot install "peer-filler-c": .*api\.snapcraft\.io/);
        await snapdIdle(snapd);
        const installed = await rest<{ name: string }[]>(snapd, "/v2/snaps");
        assertOk(!installed.some((s) => s.name === "peer-filler-c"), "removed, as asked");
      } finally {
        await snapdIdle(snapd);
        if (!(await rest<{ name: string }[]>(snapd, "/v2/snaps")).some((s) => s.name === "peer-filler-c")) {
          await snapd.install("peer-filler-c");
        }
      }
    });
  },
});

Deno.test({
  name:
    "real snapd: a burst of alternating disable/enable over four snaps, the agent SIGKILLed mid-burst — every snap ends as the DMS last asked",
  ...TEST,
  async fn() {
    const snapd = await realSnapd();
    // peer-svc's service takes 3 s to stop or start: its disable is answered at the 202 and then still runs
    const slow = join(snapd.root, "run/systemctl-standin/slow");
    await Deno.mkdir(slow, { recursive: true });
    await Deno.writeTextFile(join(slow, "snap.peer-svc.daemon.service"), "3");
    try {
      // killed once peer-svc's disable was answered (its change still running), then after 5 replies
      for (const k of [0, 5]) {
        await withRealWorld((world, snapd, agent) => burstKilledAfter(k, world, snapd, agent));
      }
    } finally {
      await Deno.remove(join(slow, "snap.peer-svc.daemon.service")).catch(() => {});
    }
  },
});

/** The burst over the real snaps, the agent killed after `k` replies (0: once peer-svc's first is in). */
async function burstKilledAfter(k: number, world: World, snapd: RealSnapd, agent: Child): Promise<void> {
  const before = Math.max(
    0,
    ...(await rest<{ id: string }[]>(snapd, "/v2/changes?select=all")).map((c) => Number(c.id)),
  );
  const plan = burstPlan(SNAPS, `real-k${k}`);
  const ids = new Set(plan.map((a) => a.id));
  const answered = () =>
    new Set(world.dms.responses(DEVICE_ID).map((m) => m.json?.id).filter((id) => ids.has(id as string)));
  const first = `real-k${k}-peer-svc-0`;
  await sendBurst(world.dms, DEVICE_ID, plan);
  await until(
    () => k === 0 ? answered().has(first) : answered().size >= k,
    k === 0 ? `the reply to ${first}` : `${k} replies of the burst`,
    60_000,
  );
  await agent.stop("SIGKILL");
  const second = world.agent([], { IOTAGENT_SNAPD_CONFLICT_TIMEOUT: "30s" });
  await until(() => answered().size === ids.size, "every id of the burst answered", 120_000);
  await snapdIdle(snapd);
  await sleep(1000); // a window for a second reply
  const changes = (await rest<SnapdChange[]>(snapd, "/v2/changes?select=all")).filter((c) =>
    Number(c.id) > before
  );
  const verdict = await judgeBurst(plan, {
    dms: world.dms,
    deviceId: DEVICE_ID,
    snapd: { changes, statusOf: async (snap) => (await snapOf(snapd, snap)).status },
  });
  assertEquals(
    { lost: verdict.lost, contradictions: verdict.contradictions, repeated: verdict.repeatedEffects },
    { lost: [], contradictions: [], repeated: [] },
    `killed after ${k} replies\n${second.tail(20)}`,
  );
  // leave snapd as the file found it: every snap enabled
  const disabled = SNAPS.filter((snap) => plan.filter((a) => a.snap === snap).at(-1)!.action === "disable");
  await sendAll(
    world,
    disabled.map((snap) => ({ id: `real-k${k}-restore-${snap}`, action: "enable", snap })),
  );
}

Deno.test({
  name: "real snapd: snapd restarting in the middle of a burst of 30 actions — every action answered once",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, snapd) => {
      const requests = Array.from(
        { length: 30 },
        (_, i) =>
          i % 3 === 0 ? { id: `b${i}`, action: "restart", snap: "peer-svc", data: "{}" } : {
            id: `b${i}`,
            action: i % 3 === 1 ? "info" : "list",
            snap: i % 3 === 1 ? "peer-filler-a" : "",
          },
      );
      const after = world.dms.mark();
      for (const request of requests.slice(0, 10)) {
        await world.dms.send(DEVICE_ID, JSON.stringify({ data: "", ...request }));
      }
      const restarting = snapd.restart();
      for (const request of requests.slice(10)) {
        await world.dms.send(DEVICE_ID, JSON.stringify({ data: "", ...request }));
      }
      await restarting;
      for (const { id } of requests) await world.dms.response(DEVICE_ID, id, { after, timeoutMs: 90_000 });
      await sleep(1000); // a window for a second reply, which must not come
      for (const { id } of requests) {
        const replies = world.dms.responses(DEVICE_ID).filter((m) => m.json?.id === id);
        assertEquals(replies.length, 1, `exactly one reply to ${id}`);
      }
      const failed = requests.filter(({ id }) =>
        world.dms.responses(DEVICE_ID).find((m) => m.json?.id === id)!.json!.success !== true
      );
      assertOk(failed.length < requests.length, `most were answered with success: ${failed.length} failures`);
    });
  },
});

Deno.test({
  name: "real snapd: the local NATS API lists the real snaps and starts real changes",
  ...TEST,
  async fn() {
    // a private password: with the published default the API refuses every write
    const password = "a private real-snapd test password";
    const server = await NatsServer.start({ users: [{ user: "snapd", password }] });
    try {
      await withRealWorld(async (_world, snapd) => {
        const client = await connectNats({ servers: server.url, user: "snapd", pass: password });
        try {
          const ask = async (subject: string, body: unknown) =>
            JSON.parse(new TextDecoder().decode(
              (await client.request(subject, new TextEncoder().encode(JSON.stringify(body)), {
                timeout: 10_000,
              })).data,
            ));
          let listed: { snaps?: { name: string }[] } = {};
          await until(async () => {
            listed = await ask("v1.snapd.v2.snaps.get", {}).catch(() => ({}));
            return Array.isArray(listed.snaps);
          }, "the API serves");
          assertEquals(listed.snaps!.map((s) => s.name).sort(), [
            "peer-bbbase",
            "peer-filler-a",
            "peer-filler-b",
            "peer-filler-c",
            "peer-svc",
            "snapd",
          ]);
          const model = await ask("v1.snapd.v2.assertions.get", { type: "model" });
          assertMatch(model.stream, /^type: model\n/);
          const restarted = await ask("v1.snapd.v2.apps.post", {
            action: "restart",
            names: ["peer-svc.daemon"],
          });
          assertMatch(restarted.changeId, /^\d+$/);
          await snapdIdle(snapd);
          const change = await rest<{ kind: string; status: string }>(
            snapd,
            `/v2/changes/${restarted.changeId}`,
          );
          assertEquals([change.kind, change.status], ["service-control", "Done"]);
          const changes = await ask("v1.snapd.v2.changes.get", { select: "all", for: "peer-svc" });
          assertOk(changes.changes.some((c: { id: string }) => c.id === restarted.changeId));
        } finally {
          await client.close();
        }
      }, {
        IOTAGENT_NATS_ENABLED: "true",
        IOTAGENT_NATS_URL: server.url,
        IOTAGENT_NATS_SNAPD_PASSWORD: password,
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "real snapd: required-install of a store snap fails offline with snapd's error, is retried, nothing wedges",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, _snapd, agent) => {
      await world.dms.publish(
        "devices/actions/PEER0001/required-install",
        JSON.stringify({ id: "ri", snaps: [{ name: "hello-world", channel: "latest", track: "stable" }] }),
      );
      await agent.waitForLine(
        /installing required snap hello-world failed: cannot install "hello-world": .*snapcraft/,
      );
      await agent.waitForLine(/installing required snap hello-world failed/, { after: agent.mark() });
      assertEquals((await world.dms.request(DEVICE_ID, { action: "info", snap: "peer-svc" })).success, true);
    });
  },
});

Deno.test({
  name: "real snapd: the change logger stores a genuinely running change and the watchdog reports it as hung",
  ...TEST,
  async fn() {
    const snapd = await realSnapd();
    const slow = join(snapd.root, "run/systemctl-standin/slow");
    await Deno.mkdir(slow, { recursive: true });
    await Deno.writeTextFile(join(slow, "snap.peer-svc.daemon.service"), "6");
    const dir = await Deno.makeTempDir({ prefix: "real-snapd-watchdog-" });
    let watchdog;
    try {
      const stop = await snapd.snap("stop", "--no-wait", "peer-svc.daemon");
      const changeId = stop.trim();
      assertMatch(changeId, /^\d+$/);
      watchdog = startAgent(["watchdog"], {
        SNAP_DATA: dir,
        IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
        IOTAGENT_WATCHDOG_CHANGE_TIMEOUT: "2s",
        IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
        IOTAGENT_SNAPLOGGER_DURATION_BETWEEN_CHECKS: "1s",
        IOTAGENT_WATCHDOG_REBOOT: "false",
        IOTAGENT_LOG_LEVEL: "debug",
      });
      await watchdog.waitForLine(new RegExp(`(new|known) change ${changeId} service-control .* (Do|Doing) `));
      const report = join(dir, `snap_changes_${changeId}.json`);
      await until(
        async () => await Deno.stat(report).then(() => true, () => false),
        "the hung-change report",
        20_000,
      );
      const changes = JSON.parse(await Deno.readTextFile(report)) as { id: string; status: string }[];
      const hung = changes.find((c) => c.id === changeId);
      assertOk(hung && ["Do", "Doing"].includes(hung.status), JSON.stringify(hung));
      await watchdog.waitForLine(new RegExp(`-> change ${changeId} service-control .* Done`), {
        timeoutMs: 20_000,
      });
    } finally {
      await watchdog?.stop();
      await Deno.remove(join(slow, "snap.peer-svc.daemon.service")).catch(() => {});
      await snapd.snap("start", "peer-svc.daemon").catch(() => {});
      await snapdIdle(snapd);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "real snapd: killed while an action waits for the snap's running change, the agent runs it once after restarting",
  ...TEST,
  async fn() {
    await withRealWorld(async (world, snapd, first) => {
      const slow = join(snapd.root, "run/systemctl-standin/slow");
      await Deno.mkdir(slow, { recursive: true });
      await Deno.writeTextFile(join(slow, "snap.peer-svc.daemon.service"), "3");
      try {
        const after = world.dms.mark();
        await world.dms.send(
          DEVICE_ID,
          JSON.stringify({ id: "k1", action: "stop", snap: "peer-svc", data: "{}" }),
        );
        await world.dms.send(
          DEVICE_ID,
          JSON.stringify({ id: "k2", action: "start", snap: "peer-svc", data: "{}" }),
        );
        await world.dms.response(DEVICE_ID, "k1", { after, timeoutMs: 30_000 }); // answered at the 202
        await first.waitForLine(/action start requested id=k2/);
        // out of the outbox: a kill between the broker's copy and the PUBACK would publish k1 again (QoS 1)
        await first.waitForLine(/response acknowledged by the broker/);
        await first.stop("SIGKILL"); // k2 is waiting for k1's change, which runs for 3 s
        const second = world.agent([], { IOTAGENT_SNAPD_CONFLICT_TIMEOUT: "30s" });
        const k2 = await world.dms.response(DEVICE_ID, "k2", { after, timeoutMs: 60_000 });
        assertEquals(k2.success, true, JSON.stringify(k2));
        await second.waitForLine(/resuming action start accepted before the restart/);
        await snapdIdle(snapd);
        const daemon = (await snapOf(snapd, "peer-svc")).apps?.find((a) => a.name === "daemon");
        assertEquals(daemon?.active, true, "started, as the DMS asked last");
        await sleep(1000); // a window for a second reply, which must not come
        for (const id of ["k1", "k2"]) {
          assertEquals(world.dms.responses(DEVICE_ID).filter((m) => m.json?.id === id).length, 1, id);
        }
      } finally {
        await Deno.remove(join(slow, "snap.peer-svc.daemon.service")).catch(() => {});
      }
    });
  },
});

Deno.test({
  name: "real snapd: stops cleanly, every snap unmounted",
  ...TEST,
  async fn() {
    const snapd = await realSnapd();
    const root = snapd.root;
    await snapd.stop();
    shared = undefined;
    const mounts = (await Deno.readTextFile("/proc/self/mounts")).split("\n").filter((l) => l.includes(root));
    assertEquals(mounts, []);
  },
});
