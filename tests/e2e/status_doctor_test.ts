/** `agent status` and `agent doctor` against running daemons in the test harness. */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { runAgent, startAgent } from "../support/agent_process.ts";
import { fakeSnap, runIn } from "../support/fake_snap.ts";
import { goParams, goSecret } from "../support/go_files.ts";
import { NatsServer } from "../support/nats_server.ts";
import { freePort } from "../support/ports.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld, type World } from "../support/world.ts";
import { formatDoctor, runDoctor } from "../../lib/doctor/doctor.ts";
import { buildConfig } from "../../lib/config.ts";
import { resolvePaths } from "../../lib/paths.ts";
import { systemClock } from "../../lib/clock.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { openSnapd } from "../../lib/adapters/snapd_http.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";

const serverConfig = await Deno.readTextFile(new URL("../../snap/nats-server.conf", import.meta.url));

/** A private NATS password: a healthy device has one (the published default keeps the API read-only). */
const PRIVATE_PASSWORD = "a private test password 9c2d";

/** The world, its agent with the local API, and the watchdog daemon, all running. */
async function withDevice(
  fn: (world: World, env: Record<string, string>) => Promise<void>,
  password = PRIVATE_PASSWORD,
) {
  await withWorld(async (world) => {
    const nats = await NatsServer.fromConfig(
      serverConfig.replace(`"${DEFAULT_NATS_PASSWORD}"`, JSON.stringify(password)),
    );
    const env = {
      ...world.env,
      IOTAGENT_NATS_ENABLED: "true",
      IOTAGENT_NATS_URL: nats.url,
      IOTAGENT_NATS_SNAPD_PASSWORD: password,
    };
    const agent = world.agent([], env);
    const watchdog = startAgent(["watchdog"], env);
    try {
      await world.online();
      await agent.waitForLine(/connected to NATS .*; serving/);
      await watchdog.waitForLine(/watchdog started/);
      await until(() => {
        try {
          const status = JSON.parse(Deno.readTextFileSync(join(world.runtimeDir, "status.json")));
          return status.broker?.connected && status.lastHealthAt && status.nats?.connected;
        } catch {
          return false;
        }
      }, "the status file reports the connection");
      await until(
        () => Deno.statSync(join(world.runtimeDir, "watchdog-status.json")).isFile,
        "watchdog status",
      );
      await fn(world, env);
    } finally {
      await watchdog.stop();
      await nats.stop();
    }
  });
}

function line(output: string, label: string): string {
  return output.split("\n").find((l) => l.startsWith(label)) ?? `(no ${label} line in)\n${output}`;
}

Deno.test({
  name: "agent status: one screen with every state, and --json for machines",
  ...E2E,
  async fn() {
    await withDevice(async (world, env) => {
      const id = world.identity.enrolledIds[0];
      const { code, output } = await runAgent(["status"], env);
      assertEquals(code, 0, output);
      assertMatch(line(output, "Agent daemon"), /running \(pid \d+\)/);
      assertMatch(line(output, "Enrollment"), new RegExp(`enrolled as ${id} \\(organisation org-test\\)`));
      assertMatch(line(output, "Phase"), /^Phase +serving$/);
      assertMatch(line(output, "Broker"), /localhost:\d+ — connected since 20\d\d-.* ago\)/);
      assertMatch(line(output, "Last health"), /20\d\d-.*Z \(\d+ s ago\)/);
      assertMatch(line(output, "Outbox"), /0 response\(s\) waiting/);
      assertMatch(
        line(output, "Memory"),
        /^Memory +\d+\.\d MiB resident; JavaScript heap \d+\.\d MiB used of \d+\.\d MiB$/,
      );
      assertMatch(line(output, "NATS"), /connected$/);
      assertMatch(line(output, "Watchdog"), /running \(pid \d+\); last check .*: healthy/);
      assertMatch(line(output, "Change store"), /changes\.db — \d+ KiB/);
      const json = JSON.parse((await runAgent(["status", "--json"], env)).output);
      assertEquals([json.agent.enrolled, json.agent.deviceId, json.agent.broker.connected], [true, id, true]);
      assertEquals(json.watchdog.lastCheck.verdict, "healthy");
      assertOk(json.agent.memory.rss > json.agent.memory.heapUsed, "the agent's memory, in bytes");
    });
  },
});

Deno.test({
  name: "agent doctor: every check ok on a healthy device; each failing check provoked once",
  ...E2E,
  async fn() {
    await withDevice(async (world, env) => {
      const healthy = await runAgent(["doctor"], env);
      assertEquals(healthy.code, 0, healthy.output);
      for (
        const name of [
          "snapd",
          "assertions",
          "proxy",
          "identity service",
          "credentials",
          "clock",
          "broker",
          "NATS",
          "change database",
          "disk",
        ]
      ) {
        assertMatch(healthy.output, new RegExp(`^\\[ ok \\] ${name}: `, "m"));
      }

      const provoke = async (extra: Record<string, string>, pattern: RegExp) => {
        const result = await runAgent(["doctor"], { ...env, ...extra });
        assertEquals(result.code, 1, result.output);
        assertMatch(result.output, pattern);
      };
      await provoke(
        { IOTAGENT_SNAPD_SOCKET: "/nonexistent/snapd.socket" },
        /^\[FAIL\] snapd: snapd does not answer/m,
      );
      world.snapd.assertions.set("serial", undefined);
      await provoke({}, /^\[FAIL\] assertions: no serial assertion yet\n {7}hint: /m);
      world.snapd.assertions.set(
        "serial",
        await Deno.readTextFile(new URL("../fixtures/assertions/serial-PEER0001.assert", import.meta.url)),
      );
      await provoke(
        { IOTAGENT_MQTT_CA: "" },
        /^\[FAIL\] broker: cannot verify the certificate of broker localhost:\d+ .*mqtt\.verify=false/m,
      );
      await provoke(
        { IOTAGENT_NATS_SNAPD_PASSWORD: "wrong" },
        /^\[FAIL\] NATS: .* refuses user snapd: .*Authorization Violation/m,
      );
      const corrupt = join(world.dir, "corrupt.db");
      await Deno.writeTextFile(corrupt, "not a database ".repeat(500));
      await provoke({ IOTAGENT_SNAPLOGGER_DATABASE_LOCATION: corrupt }, /^\[FAIL\] change database: /m);
    });
  },
});

Deno.test({
  name: "the published default NATS password: status and doctor say in one line each that writes are refused",
  ...E2E,
  async fn() {
    await withDevice(async (_world, env) => {
      const status = await runAgent(["status"], env);
      assertMatch(
        line(status.output, "NATS"),
        /^NATS +connected; every write refused: nats\.snapd\.password is the published default, so any local client could change this device; set a private password: set nats\.snapd\.password /,
      );
      const doctor = await runAgent(["doctor"], env);
      assertEquals(doctor.code, 0, doctor.output);
      assertMatch(
        doctor.output,
        /^\[warn\] NATS: 127\.0\.0\.1:\d+ accepts user snapd; the local API refuses every write: nats\.snapd\.password is the published default.*\n {7}hint: set a private password: set nats\.snapd\.password /m,
      );
      assertMatch(
        doctor.output,
        /^\[warn\] NATS transport: no nats\.ca: the password of user snapd travels in clear to whatever listens on nats:\/\/127\.0\.0\.1:\d+\n {7}hint: run the NATS server with TLS and set nats\.ca/m,
      );
    }, DEFAULT_NATS_PASSWORD);
  },
});

Deno.test({
  name:
    "agent doctor: credentials expired, expiring soon, clock before notBefore, not configured, identity unreachable",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const organization = world.ca.issue("Example Inc", { isCA: true });
      const day = 86_400_000;
      const secretWith = (from: number, to: number) =>
        goSecret({
          id: "1tQGoAgentWrote0000000000000",
          client: world.ca.issue("device", { notBefore: new Date(from), notAfter: new Date(to) }),
          organization,
          mqttUrl: "localhost",
          mqttPort: String(world.broker.port),
        });
      const secret = join(world.dataDir, ".secret");
      const doctor = () => runAgent(["doctor"], world.env);

      await Deno.writeTextFile(secret, secretWith(Date.now() - 400 * day, Date.now() - day));
      assertMatch((await doctor()).output, /^\[FAIL\] credentials: the client certificate expired on /m);
      await Deno.writeTextFile(secret, secretWith(Date.now() - day, Date.now() + 10 * day));
      assertMatch((await doctor()).output, /^\[warn\] credentials: .*expires in less than 30 days/m);
      await Deno.writeTextFile(secret, secretWith(Date.now() + 3 * day, Date.now() + 400 * day));
      assertMatch(
        (await doctor()).output,
        /^\[FAIL\] clock: the system clock .* is before the certificate's notBefore/m,
      );

      await Deno.remove(secret);
      await Deno.remove(join(world.dataDir, "params"));
      const unconfigured = await doctor();
      assertEquals(unconfigured.code, 1);
      assertMatch(
        unconfigured.output,
        /^\[FAIL\] identity service: no identity service URL .*\n {7}hint: agent configure --url https:\/\/identity\.example\.com$/m,
      );
      assertMatch(
        unconfigured.output,
        /^\[FAIL\] credentials: not enrolled: no \.secret\n {7}hint: agent configure --url /m,
      );
      await Deno.writeTextFile(
        join(world.dataDir, "params"),
        goParams(`http://127.0.0.1:${freePort()}`, secret),
      );
      assertMatch(
        (await doctor()).output,
        /^\[FAIL\] identity service: cannot reach the identity service at http:\/\/127\.0\.0\.1:\d+\/v1\/device\/enroll: /m,
      );
    });
  },
});

Deno.test("agent doctor: snapd-control not connected inside a snap", async () => {
  const snap = await fakeSnap();
  try {
    const result = await runIn(snap, join(snap.env.SNAP, "bin/agent"), ["doctor"], {
      FAKE_SNAPCTL_FAIL_IS_CONNECTED: "1",
    });
    assertEquals(result.code, 1);
    assertMatch(
      result.stdout,
      /^\[FAIL\] snapd: the snapd-control interface is not connected\n {7}hint: sudo snap connect iot-agent:snapd-control$/m,
    );
    assertMatch(
      result.stdout,
      /^\[FAIL\] identity service: .*\n {7}hint: sudo snap set iot-agent url=https:/m,
    );
    assertEquals(result.stdout.includes("<snap>"), false, "no placeholder in any hint");
    assertOk((await snap.calls()).includes("is-connected snapd-control"));
  } finally {
    await snap.remove();
  }
});

Deno.test("agent doctor: little free disk warns, almost none fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { config } = buildConfig({
      env: { IOTAGENT_NATS_ENABLED: "false", IOTAGENT_SNAPD_SOCKET: `${dir}/none.sock` },
    });
    const paths = resolvePaths({ SNAP_DATA: dir, SNAP_COMMON: dir }, false);
    const log = createLogger("test", { sink: new MemorySink() });
    const snapd = openSnapd({
      socketPath: config["snapd.socket"],
      timeoutMs: 1000,
      clock: systemClock,
    });
    const natsConnect = () => Promise.reject(new Error("no NATS in this test"));
    const disk = async (free: number) =>
      (await runDoctor({
        config,
        paths,
        env: {},
        log,
        snapd,
        natsConnect,
        freeBytes: () => Promise.resolve(free),
        snapctl: () => Promise.reject(new Error("not in a snap")),
        now: Date.now(),
      })).find((
        r,
      ) => r.name === "disk")!;
    assertEquals((await disk(50 * 1024 * 1024)).status, "warn");
    const full = await disk(5 * 1024 * 1024);
    assertEquals(full.status, "fail");
    assertMatch(formatDoctor([full]).text, /^\[FAIL\] disk: 5 MiB free in .*\n {7}hint: free some space/);
    assertEquals(formatDoctor([full]).failed, true);
    snapd.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "agent status: a daemon killed is reported not running at once, the enrollment read from .secret; --json keeps its shape; exit 3",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      const id = await world.online();
      await until(() => {
        try {
          return JSON.parse(Deno.readTextFileSync(join(world.runtimeDir, "status.json"))).enrolled === true;
        } catch {
          return false;
        }
      }, "the agent's status file says enrolled");
      const running = await runAgent(["status", "--json"], world.env);
      assertEquals(running.code, 3, "the watchdog daemon is not running");
      const before = JSON.parse(running.output);
      assertEquals([before.agent.state, before.watchdog.state], ["running", "not started"]);
      assertEquals([before.enrollment.source, before.enrollment.deviceId], ["agent", id]);

      await agent.stop("SIGKILL");
      const text = await runAgent(["status"], world.env);
      assertEquals(text.code, 3, text.output);
      assertMatch(
        line(text.output, "Agent daemon"),
        /not running: its process \(pid \d+\) is gone — killed or crashed/,
      );
      assertMatch(
        line(text.output, "Enrollment"),
        new RegExp(
          `enrolled as ${id} \\(organisation org-test\\) — from \\.secret \\(the agent is not running\\)`,
        ),
      );
      assertEquals(
        line(text.output, "Broker").startsWith("(no Broker line"),
        true,
        "no live fields of a dead daemon",
      );
      const json = JSON.parse((await runAgent(["status", "--json"], world.env)).output);
      assertEquals(Object.keys(json).sort(), ["agent", "changeStore", "enrollment", "paths", "watchdog"]);
      assertEquals([json.agent.state, json.watchdog.state], ["failed", "not started"]);
      assertEquals([json.enrollment.enrolled, json.enrollment.deviceId, json.enrollment.source], [
        true,
        id,
        ".secret",
      ]);

      await Deno.remove(join(world.dataDir, ".secret"));
      const gone = JSON.parse((await runAgent(["status", "--json"], world.env)).output);
      assertEquals([gone.enrollment.enrolled, gone.enrollment.source], [false, ".secret"]);
    });
  },
});

Deno.test({
  name:
    "agent doctor is read-only and says what is wrong: corrupt params reported (not moved), a URL that 404s, the identity service answering, 'already enrolled' explained",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const doctor = () => runAgent(["doctor"], world.env);
      const params = join(world.dataDir, "params");

      const healthy = await doctor(); // configured, not enrolled yet
      assertMatch(
        healthy.output,
        /^\[ ok \] identity service: http:\/\/.* answers as an IoT Identity service/m,
      );

      await Deno.writeTextFile(params, '{"url": "http://c.example.com", trunc');
      const before = [...Deno.readDirSync(world.dataDir)].map((e) => e.name).sort();
      const corrupt = await doctor();
      assertEquals(corrupt.code, 1);
      assertMatch(
        corrupt.output,
        /^\[FAIL\] identity service: params is corrupt \(.*\); the agent moves it aside at its next start\n {7}hint: set the URL again: agent configure --url /m,
      );
      assertEquals([...Deno.readDirSync(world.dataDir)].map((e) => e.name).sort(), before, "nothing moved");
      assertEquals(
        await Deno.readTextFile(params),
        '{"url": "http://c.example.com", trunc',
        "nothing changed",
      );

      await world.configure(`${world.identity.url}/wrong/path`);
      const notFound = await doctor();
      assertEquals(notFound.code, 1);
      assertMatch(notFound.output, /^\[FAIL\] identity service: .*answered HTTP 404/m);
      assertMatch(
        notFound.output,
        /hint: is this the identity service's URL\? the agent posts to .*\/wrong\/path\/v1\/device\/enroll/,
      );

      // enrolled once; then .secret lost: the identity service refuses a second enrollment
      await world.configure();
      const agent = world.agent();
      await world.online();
      await agent.stop();
      await Deno.remove(join(world.dataDir, ".secret"));
      const again = world.agent();
      await again.waitForLine(/already enrolled/);
      await until(() => {
        try {
          return /already enrolled/.test(
            JSON.parse(Deno.readTextFileSync(join(world.runtimeDir, "status.json"))).enrollmentError,
          );
        } catch {
          return false;
        }
      }, "the status file says why");
      const refused = await doctor();
      assertMatch(
        refused.output,
        /^\[FAIL\] credentials: not enrolled: the identity service says this device is already enrolled .*\n {7}hint: an operator must reset the device's registration on the identity service/m,
      );
      await again.stop();
    });
  },
});
