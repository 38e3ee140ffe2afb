/**
 * End-to-end: the real agent process (started as `deno task start` starts it) against a real mosquitto with
 * mutual TLS and a DMS-like ACL, the identity stub and the fake snapd.
 */
import { needs, rootMissing } from "../support/requirement.ts";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../support/assert.ts";
import { agentArgv, PROJECT_ROOT, runAgent, startAgent } from "../support/agent_process.ts";
import { Child } from "../support/child.ts";
import { goSecret } from "../support/go_files.ts";
import { E2E, withWorld, type World } from "../support/world.ts";

/** The agent's files in `$SNAP_DATA`, besides its database and status file. */
function dataFiles(world: World): string[] {
  const bookkeeping = (name: string) =>
    name.startsWith("agent.db") || name === "status.json" || name === "agent.lock";
  return [...Deno.readDirSync(world.dataDir)].map((e) => e.name).filter((name) => !bookkeeping(name)).sort();
}

Deno.test({
  name: "a fresh device enrolls, connects, sends health at once, then metrics, and answers device and list",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      await agent.waitForLine(/enrolled as device/);
      const id = world.identity.enrolledIds[0];
      await agent.waitForLine(/connected to broker localhost:\d+/);
      // health.interval is 60 s: a health within 10 s of the connect is the one sent at connect
      const health = await world.dms.health(id, { timeoutMs: 10_000 });
      assertEquals(Object.keys(health.json!), [
        "deviceId",
        "installedSnapsHash",
        "orgId",
        "refresh",
        "snapListHash",
      ]);
      assertEquals(health.json!.deviceId, id);
      assertEquals(health.json!.orgId, "org-test");
      assertOk(!Number.isNaN(Date.parse(health.json!.refresh as string)));
      const memory = await world.dms.waitFor((m) =>
        m.topic === "metrics/org-test" && m.payload.startsWith("memory,")
      );
      assertMatch(
        memory.payload,
        new RegExp(`^memory,device=${id} total=\\d+,used=-?\\d+,usedpc=-?\\d+\\.\\d{6}$`),
      );
      await world.dms.waitFor((m) => m.topic === "metrics/org-test" && m.payload.startsWith("cpu,"));

      const device = await world.dms.request(id, { action: "device" });
      assertEquals(device.success, true);
      const result = device.result as Record<string, unknown>;
      assertEquals([result.brand, result.model, result.serial, result.deviceId, result.orgId], [
        "peerbrand",
        "peer-model",
        "PEER0001",
        id,
        "org-test",
      ]);
      const list = await world.dms.request(id, { action: "list" });
      assertEquals([list.success, list.version, list.message], [true, "2", ""]);
      const snaps = (list.result as { snaps: { name: string }[]; snapListHash: string }).snaps;
      assertEquals(snaps.map((s) => s.name), ["snapd", "peer-bbbase", "peer-svc"]);
      assertEquals((list.result as { snapListHash: string }).snapListHash, health.json!.snapListHash);

      assertEquals(dataFiles(world), [".secret", "params"], "no temporary files left");
      assertEquals((await Deno.stat(join(world.dataDir, ".secret"))).mode! & 0o777, 0o600);
      // the broker saw a persistent session (c0) with a 30 s keep-alive (k30), client id = enrollment id
      const login = world.broker.log!.lines.find((l) => l.includes(`as ${id} `))!;
      assertMatch(login, /\(p2, c0, k30, u'[0-9A-Za-z]{27}'\)/);
    });
  },
});

Deno.test({
  name: "dms.protocol=legacy: list answers the 2021 array, health has no hashes",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent([], { IOTAGENT_DMS_PROTOCOL: "legacy" });
      const id = await world.online();
      const health = await world.dms.health(id);
      assertEquals(Object.keys(health.json!), ["deviceId", "orgId", "refresh"]);
      const list = await world.dms.request(id, { action: "list" });
      assertEquals(list.version, undefined);
      assertOk(Array.isArray(list.result));
      assertEquals((list.result as Record<string, unknown>[])[2].revision, -1);
    });
  },
});

Deno.test({
  name: "health keeps coming after the first (health.interval=1s)",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent([], { IOTAGENT_HEALTH_INTERVAL: "1s" });
      const id = await world.online();
      const first = await world.dms.health(id);
      const second = await world.dms.health(id, { after: world.dms.messages.indexOf(first) + 1 });
      await world.dms.health(id, { after: world.dms.messages.indexOf(second) + 1 });
      // when each goes out is tested with a fake clock in telemetry_test.ts; here: they keep coming
    });
  },
});

Deno.test({
  name:
    "a broker certificate from an untrusted CA is refused, naming mqtt.ca and mqtt.verify; mqtt.verify=false connects",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const refused = world.agent();
      const line = await refused.waitForLine(/connecting to broker .* failed/);
      assertMatch(
        line,
        /the certificate of broker localhost:\d+ \(localhost\) is signed by "iot-agent test CA", which this device does not trust/,
      );
      assertIncludes(line, "set mqtt.ca to the PEM bundle of the CA that signed it");
      assertIncludes(line, "set mqtt.verify=false");
      assertIncludes(line, "mqtt.ca (not set)");
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assertEquals(
        refused.matching(/WARN .*connecting to broker/).length,
        1,
        "logged once for the same cause",
      );
      assertEquals(world.dms.messages.length, 0);
      await refused.stop();

      const insecure = world.agent([], { IOTAGENT_MQTT_VERIFY: "false" });
      await insecure.waitForLine(
        /mqtt\.verify=false: connecting to .* without verifying its certificate \(insecure\)/,
      );
      await world.dms.health(world.identity.enrolledIds[0]);
    }, { trustBroker: false });
  },
});

Deno.test({
  name:
    "after the broker is killed and restarted on the same port the agent reconnects, re-subscribes and answers",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      const id = await world.online();
      assertEquals((await world.dms.request(id, { action: "device" })).success, true);
      const mark = agent.mark();
      await world.broker.kill();
      await agent.waitForLine(/WARN .*disconnected from broker/, { after: mark });
      await world.broker.restart(); // no persistence: the broker has forgotten the subscription
      await agent.waitForLine(/INFO .*connected to broker/, { after: mark });
      await world.broker.log!.waitForLine(new RegExp(`${id} 1 devices/sub/${id}$`)); // subscribed again
      await world.dms.ready();
      const response = await world.dms.request(id, { action: "device" });
      assertEquals(response.success, true);
    });
  },
});

Deno.test({
  name: "bad input never crashes the agent and gets the replies Part 1 §3 requires",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      const id = await world.online();

      assertEquals(await world.dms.request(id, { action: "frobnicate" }), {
        action: "frobnicate",
        id: world.dms.responses(id).at(-1)!.json!.id as string,
        message: "unhandled action: frobnicate",
        success: false,
      });
      await world.dms.send(
        id,
        JSON.stringify({ id: "typed-1", action: "start", snap: "peer-svc", data: { services: [] } }),
      );
      assertEquals(await world.dms.response(id, "typed-1"), {
        action: "start",
        id: "typed-1",
        message: 'invalid request: "data" must be a string, got object',
        success: false,
      });
      const before = world.dms.responses(id).length;
      await world.dms.send(id, "this is not JSON");
      await world.dms.send(id, JSON.stringify({ action: "list" })); // no id: nothing to answer to
      const huge = JSON.stringify({
        id: "huge-1",
        action: "setconf",
        snap: "peer-svc",
        data: "x".repeat(1 << 20),
      });
      await world.dms.send(id, huge);
      const tooLarge = await world.dms.response(id, "huge-1");
      assertEquals(tooLarge.success, false);
      assertMatch(tooLarge.message as string, /^payload too large: \d+ bytes \(limit 262144\)$/);
      await world.dms.send(id, new Uint8Array(1 << 20).fill(0x41)); // 1 MiB, not JSON, no id
      assertEquals((await world.dms.request(id, { action: "device" })).success, true, "still answering");
      assertEquals(
        world.dms.responses(id).length,
        before + 2,
        "exactly the two answerable requests were answered",
      );
      assertEquals(
        agent.matching(/dropped an action request that cannot be answered: not JSON/).length >= 1,
        true,
      );
      assertEquals(agent.matching(/dropped an action request that cannot be answered: no id/).length, 1);
    });
  },
});

Deno.test({
  name: "an id over 256 characters or an action over 64 gets one refusal, cut to the bounds, and never runs",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent();
      const id = await world.online({ timeoutMs: 30_000 });
      const longId = "L".repeat(300);
      await world.dms.send(id, JSON.stringify({ id: longId, action: "device" }));
      assertEquals(await world.dms.response(id, longId.slice(0, 256)), {
        action: "device",
        id: longId.slice(0, 256),
        message: 'invalid request: "id" is 300 characters long (limit 256)',
        success: false,
      });
      await world.dms.send(id, JSON.stringify({ id: "long-action", action: "device".repeat(20) }));
      const refused = await world.dms.response(id, "long-action");
      assertEquals([refused.action, refused.success], ["device".repeat(20).slice(0, 64), false]);
      assertEquals((await world.dms.request(id, { action: "device" })).success, true, "still answering");
      assertEquals(
        world.dms.responses(id).filter((r) => r.json?.id === longId.slice(0, 256)).length,
        1,
        "one reply",
      );
    });
  },
});

for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  Deno.test({
    name: `${signal} stops the agent cleanly: MQTT DISCONNECT and exit code 0`,
    ...E2E,
    async fn() {
      await withWorld(async (world) => {
        const agent = world.agent();
        const id = await world.online();
        const status = await agent.stop(signal);
        assertEquals(status.code, 0);
        assertIncludes(agent.tail(3), "stopped");
        await world.broker.log!.waitForLine(new RegExp(`Client ${id} disconnected\\.`));
        assertEquals(world.broker.log!.matching(new RegExp(`Client ${id} closed its connection`)).length, 0);
      });
    },
  });
}

Deno.test({
  name: "a .secret written by the Go agent is used as is: no enrollment, straight to the broker",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const id = "1tQGoAgentWrote0000000000000";
      const client = world.ca.issue("go-device-cn");
      const organization = world.ca.issue("Example Inc", { isCA: true });
      await Deno.writeTextFile(
        join(world.dataDir, ".secret"),
        goSecret({ id, client, organization, mqttUrl: "localhost", mqttPort: String(world.broker.port) }),
        { mode: 0o600 },
      );
      world.agent();
      await world.dms.health(id);
      assertEquals((await world.dms.request(id, { action: "device" })).success, true);
      assertEquals(world.identity.requests.length, 0);
    });
  },
});

Deno.test({
  name: "not configured: the agent waits; `agent configure --url` writes params and it enrolls",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      await agent.waitForLine(/not configured: waiting for the identity service URL/);
      const bad = await runAgent(["configure", "--url", "ftp://nowhere"], world.env);
      assertEquals(bad.code, 78);
      assertIncludes(bad.output, 'invalid identity service URL "ftp://nowhere"');
      assertEquals(dataFiles(world), []);
      const good = await runAgent(["configure", "--url", world.identity.url], world.env);
      assertEquals(good.code, 0);
      assertIncludes(good.output, `Using url ${world.identity.url}`);
      const params = join(world.dataDir, "params");
      assertEquals(JSON.parse(await Deno.readTextFile(params)), {
        url: world.identity.url,
        path: join(world.dataDir, ".secret"),
      });
      assertEquals((await Deno.stat(params)).mode! & 0o777, 0o600);
      await agent.waitForLine(/enrolled as device/);
      await world.dms.health(world.identity.enrolledIds[0]);
    }, { configure: false });
  },
});

Deno.test({
  name: "configuration errors stop the agent with one clear line and a non-zero exit",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const env = { SNAP_DATA: dir, SNAP_COMMON: dir };
    try {
      const cases: [string[], Record<string, string>, number, RegExp][] = [
        [
          ["run"],
          { IOTAGENT_HEALTH_INTERVAL: "soon" },
          78,
          /^agent: invalid configuration: health\.interval="soon" \(from env IOTAGENT_HEALTH_INTERVAL\): expected a Go duration/,
        ],
        [
          ["run", "--dms.protocol=3"],
          {},
          78,
          /^agent: invalid configuration: dms\.protocol="3" \(from flag --dms\.protocol\): expected one of 2, legacy$/,
        ],
        [["run", "--mqtt.verifyy=false"], {}, 2, /^agent: Unknown option '--mqtt\.verifyy'/],
        [
          ["run"],
          { IOTAGENT_CONFIG: join(dir, "missing.json") },
          78,
          /^agent: cannot read configuration file .*missing\.json/,
        ],
        [["frobnicate"], {}, 2, /^agent: unknown command "frobnicate"/],
      ];
      for (const [args, extra, code, pattern] of cases) {
        const result = await runAgent(args, { ...env, ...extra });
        assertEquals(result.code, code, `${args} ${JSON.stringify(extra)}: ${result.output}`);
        assertEquals(result.output.trim().split("\n").length, 1, `one line: ${result.output}`);
        assertMatch(result.output.trim(), pattern);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "configure --url refuses what it would not store exactly: control characters, white space, credentials, other schemes",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const env = { SNAP_DATA: dir, SNAP_COMMON: dir };
    const params = join(dir, "params");
    try {
      const refused: [string, RegExp][] = [
        ["https://c.example.com\nx", /"https:\/\/c\.example\.com\\nx": it contains a control character/],
        ["https://c.example.com\u0085", /it contains a control character/],
        ["https://c.example.com x", /it contains white space/],
        [" https://c.example.com", /it contains white space/],
        ["https://c.example.com\t", /it contains a control character/],
        [
          "https://admin:s3cret-pw@c.example.com",
          /"https:\/\/\*\*\*@c\.example\.com": it carries a user name or password/,
        ],
        ["https://admin@c.example.com", /it carries a user name or password/],
        ["ftp://c.example.com", /its scheme is ftp: \(not http or https\)/],
        ["file:///etc/passwd", /its scheme is file:/],
        ["c.example.com", /it is not a URL/],
        [
          `https://c.example.com/${"p".repeat(3000)}`,
          /… \(\d+ characters\): it is longer than 2048 characters/,
        ],
      ];
      for (const [url, pattern] of refused) {
        const result = await runAgent(["configure", "--url", url], env);
        assertEquals(result.code, 78, `${JSON.stringify(url)}: ${result.output}`);
        assertEquals(result.output.trim().split("\n").length, 1, `one line: ${result.output}`);
        assertMatch(result.output, pattern);
        assertEquals(result.output.includes("s3cret-pw"), false, "the password is not repeated");
        assertEquals(await Deno.stat(params).then(() => true, () => false), false, "nothing stored");
      }
      const url = "https://c.example.com:8030/identity";
      assertEquals((await runAgent(["configure", "--url", url], env)).code, 0);
      assertEquals(JSON.parse(await Deno.readTextFile(params)).url, url, "stored exactly as validated");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "every file the daemons create is 0600 and every directory 0700, even under umask 000",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.snapd.addChange("install-snap", 'Install "slow" snap', "Doing", { "snap-names": ["slow"] });
      const underUmask = (args: string[], env: Record<string, string>) =>
        Child.spawn("sh", ["-c", 'umask 000 && exec "$@"', "sh", ...agentArgv(args)], {
          cwd: PROJECT_ROOT,
          env: { NO_COLOR: "1", ...world.env, ...env },
        });
      const agent = underUmask(["run"], {});
      const watchdog = underUmask(["watchdog"], {
        IOTAGENT_WATCHDOG_CHANGE_TIMEOUT: "1s",
        IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
        IOTAGENT_WATCHDOG_REBOOT: "false",
      });
      try {
        const id = await world.online();
        assertEquals((await world.dms.request(id, { action: "disable", snap: "peer-svc" })).success, true);
        await watchdog.waitForLine(/report written to .*snap_changes_\d+\.json/);
        const found: string[] = [];
        const walk = async (dir: string) => {
          for await (const entry of Deno.readDir(dir)) {
            const path = join(dir, entry.name);
            const mode = (await Deno.lstat(path)).mode! & 0o777;
            found.push(entry.name);
            if (entry.isDirectory) {
              assertEquals(mode.toString(8), "700", path);
              await walk(path);
            } else {
              assertEquals(mode.toString(8), "600", path);
            }
          }
        };
        const dirs = [world.dataDir, world.commonDir, join(world.dir, "run")];
        for (const dir of dirs) await walk(dir); // while running: the databases' -wal and -shm files
        assertOk(
          found.includes("agent.db-wal") && found.includes("changes.db-wal"),
          `-wal files among ${found}`,
        );
        await agent.stop();
        await watchdog.stop();
        for (const dir of dirs) await walk(dir);
        for (const name of [".secret", "agent.db", "changes.db", "status.json", "watchdog-status.json"]) {
          assertOk(found.includes(name), `${name} among ${found}`);
        }
        assertOk(found.some((name) => name.startsWith("snap_changes_")), "the report");
      } finally {
        await agent.stop("SIGKILL");
        await watchdog.stop("SIGKILL");
      }
    });
  },
});

Deno.test({
  name:
    "one line, no stack trace: a second daemon on the same data directory (75), an unusable SNAP_DATA (73)",
  ...E2E,
  ...needs("unusable directories", rootMissing("a read-only tmpfs mount")),
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      await world.online();
      const watchdog = startAgent(["watchdog"], world.env);
      await watchdog.waitForLine(/watchdog started/);
      // a directory where nothing can be created, as a read-only root file system is (mount needs root)
      const readOnly = join(world.dir, "read-only");
      await Deno.mkdir(readOnly);
      const mounted = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", readOnly],
      })
        .output();
      assertEquals(mounted.success, true, "mount a read-only tmpfs (the tests run as root)");
      try {
        const cases: [string[], Record<string, string>, number, RegExp][] = [
          [
            ["run"],
            {},
            75,
            new RegExp(`^agent: another agent \\(pid ${agent.pid}\\) uses ${world.dataDir}$`),
          ],
          [
            ["watchdog"],
            {},
            75,
            new RegExp(`^agent: another watchdog \\(pid ${watchdog.pid}\\) uses ${world.dataDir}$`),
          ],
          [
            ["run"],
            { SNAP_DATA: world.caFile },
            73,
            /^agent: cannot use .*broker-ca\.pem \(the data directory, \$SNAP_DATA\): it exists and is not a directory$/,
          ],
          [
            ["watchdog"],
            { SNAP_DATA: `${world.caFile}/data` },
            73,
            /^agent: cannot use .*broker-ca\.pem\/data \(the data directory, \$SNAP_DATA\): it cannot be read \(Not a directory/,
          ],
          [
            ["run"],
            { SNAP_COMMON: join(readOnly, "common") },
            73,
            /^agent: cannot use .*\/common \(the common directory, \$SNAP_COMMON\): it does not exist and cannot be created \(Read-only file system/,
          ],
        ];
        for (const [args, env, code, pattern] of cases) {
          const result = await runAgent(args, { ...world.env, ...env });
          assertEquals(result.code, code, `${args} ${JSON.stringify(env)}: ${result.output}`);
          assertEquals(result.output.trim().split("\n").length, 1, `one line: ${result.output}`);
          assertMatch(result.output.trim(), pattern);
        }
        assertEquals(
          (await world.dms.request(await world.online(), { action: "device" })).success,
          true,
          "the first agent works on",
        );
      } finally {
        await watchdog.stop();
      }
    });
  },
});
