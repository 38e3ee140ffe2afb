/**
 * The snap: snapcraft.yaml names only files that exist, every shell script passes shellcheck, the configure hook
 * validates and restarts only what changed, `unregister` in and out of a snap, and the compiled executables.
 */
import { needs, rootMissing } from "../support/requirement.ts";
import { join } from "node:path";
import { parse } from "yaml";
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../support/assert.ts";
import { PROJECT_ROOT, runAgent } from "../support/agent_process.ts";
import { type FakeSnap, fakeSnap, runIn } from "../support/fake_snap.ts";
import { E2E, withWorld } from "../support/world.ts";

interface Snapcraft {
  name: string;
  base: string;
  confinement: string;
  apps: Record<
    string,
    { command: string; daemon?: string; plugs?: string[]; environment?: Record<string, string> }
  >;
  hooks?: Record<string, unknown>;
  parts: Record<string, { "override-build"?: string; prime?: string[] }>;
}

const snapcraft = parse(await Deno.readTextFile(join(PROJECT_ROOT, "snap/snapcraft.yaml"))) as Snapcraft;

Deno.test("snapcraft.yaml: current base, strict, the four apps, and every file it names exists", async () => {
  assertOk(["core22", "core24"].includes(snapcraft.base));
  assertEquals(snapcraft.confinement, "strict");
  assertEquals(snapcraft.apps.agent.command, "bin/agent run");
  assertEquals(snapcraft.apps.watchdog.command, "bin/agent watchdog");
  assertEquals(snapcraft.apps.unregister.command, "bin/unregister");
  assertEquals(snapcraft.apps["iot-agent"].command, "bin/agent");
  assertEquals([snapcraft.apps.agent.daemon, snapcraft.apps.watchdog.daemon], ["notify", "notify"]);
  for (const daemon of [snapcraft.apps.agent, snapcraft.apps.watchdog]) {
    assertOk(daemon.plugs?.includes("daemon-notify"), "the notification socket");
    assertEquals((daemon as { "watchdog-timeout"?: string })["watchdog-timeout"], "5m");
  }
  for (const plug of ["network", "network-bind", "snapd-control"]) {
    assertOk(snapcraft.apps.agent.plugs?.includes(plug), plug);
  }
  assertOk(snapcraft.apps.watchdog.plugs?.includes("shutdown"));
  const part = snapcraft.parts.agent;
  const primed = new Set(part.prime ?? []);
  for (const app of Object.values(snapcraft.apps)) {
    const binary = app.command.split(" ")[0];
    assertOk(primed.has(binary), `${binary} is primed`);
    assertIncludes(part["override-build"] ?? "", `\${CRAFT_PART_INSTALL}/${binary}`);
  }
  for (const file of (part["override-build"] ?? "").match(/snap\/[\w./-]+/g) ?? []) {
    assertOk(await Deno.stat(join(PROJECT_ROOT, file)), `${file} exists`);
  }
  for (const hook of Object.keys(snapcraft.hooks ?? {})) {
    const info = await Deno.stat(join(PROJECT_ROOT, "snap/hooks", hook));
    assertOk(info.isFile && (info.mode! & 0o111) !== 0, `hook ${hook} exists and is executable`);
  }
  const help = await runAgent(["--help"], {});
  for (const command of ["run", "watchdog", "configure", "status", "doctor"]) {
    assertMatch(help.output, new RegExp(`agent \\[?${command}`));
  }
});

Deno.test("every shell script passes shellcheck", async () => {
  const scripts: string[] = [];
  for (const dir of ["snap", "snap/hooks", "snap/local", ".ci"]) {
    for (const entry of Deno.readDirSync(join(PROJECT_ROOT, dir))) {
      const path = join(PROJECT_ROOT, dir, entry.name);
      if (entry.isFile && (await Deno.readTextFile(path)).startsWith("#!")) scripts.push(path);
    }
  }
  assertOk(scripts.length >= 3, `found ${scripts.length} scripts`);
  const output = await new Deno.Command("shellcheck", { args: scripts, stdout: "piped", stderr: "piped" })
    .output();
  assertEquals(output.code, 0, new TextDecoder().decode(output.stdout));
});

const hook = join(PROJECT_ROOT, "snap/hooks/configure");

Deno.test("configure hook: validates every key, writes params when url changes, restarts only what changed", async () => {
  const snap = await fakeSnap();
  try {
    const restarts = async () => (await snap.calls()).filter((c) => c.startsWith("restart"));
    assertEquals((await runIn(snap, hook)).code, 0, "install: nothing set");
    assertEquals(await restarts(), [], "the first digests are only recorded");
    const digests = (await snap.config()).private as { digest: Record<string, string> };
    assertMatch(digests.digest.agent, /^sha256:[0-9a-f]{64}$/);

    await snap.setConfig({ ...(await snap.config()), url: "https://identity.example.com:8030" });
    assertEquals((await runIn(snap, hook)).code, 0);
    assertEquals(
      JSON.parse(await Deno.readTextFile(join(snap.env.SNAP_DATA, "params"))).url,
      "https://identity.example.com:8030",
    );
    assertEquals(await restarts(), ["restart iot-agent.agent"]);

    await snap.setConfig({ ...(await snap.config()), watchdog: { reboot: false } });
    assertEquals((await runIn(snap, hook)).code, 0);
    assertEquals(
      (await restarts()).slice(1),
      ["restart iot-agent.watchdog"],
      "only the watchdog reads watchdog.*",
    );

    await snap.setConfig({ ...(await snap.config()), mqtt: { keepalive: "45s" } });
    assertEquals((await runIn(snap, hook)).code, 0);
    assertEquals((await restarts()).slice(2), ["restart iot-agent.agent"]);

    assertEquals((await runIn(snap, hook)).code, 0, "nothing changed");
    assertEquals((await restarts()).length, 3);
  } finally {
    await snap.remove();
  }
});

Deno.test("configure hook: a bad value is refused with the agent's message; nothing is written or restarted", async () => {
  const snap = await fakeSnap();
  try {
    await runIn(snap, hook);
    const before = (await snap.calls()).length;
    await snap.setConfig({ ...(await snap.config()), mqtt: { keepalive: "soon" } });
    const refused = await runIn(snap, hook);
    assertEquals(refused.code, 1);
    assertMatch(
      refused.stderr.trim(),
      /^invalid configuration: mqtt\.keepalive="soon" \(from snap\): expected a Go duration/,
    );
    await snap.setConfig({ ...(await snap.config()), mqtt: {}, url: "ftp://nope" });
    const badUrl = await runIn(snap, hook);
    assertEquals(badUrl.code, 1);
    assertMatch(badUrl.stderr, /invalid identity service URL "ftp:\/\/nope"/);
    assertOk(!(await snap.calls()).slice(before).some((c) => c.startsWith("restart")));
    assertEquals(await Deno.stat(join(snap.env.SNAP_DATA, "params")).then(() => true, () => false), false);
  } finally {
    await snap.remove();
  }
});

Deno.test("configure hook: an http:// URL outside loopback is refused unless identity.allow-insecure-http is set", async () => {
  const snap = await fakeSnap();
  try {
    await runIn(snap, hook);
    await snap.setConfig({ ...(await snap.config()), url: "http://identity.example.com" });
    const refused = await runIn(snap, hook);
    assertEquals(refused.code, 1);
    assertMatch(
      refused.stderr.trim(),
      /^invalid identity service URL "http:\/\/identity\.example\.com": plain http outside loopback .*identity\.allow-insecure-http=true \(insecure\)/,
    );
    assertEquals(refused.stderr.trim().split("\n").length, 1, "one line");
    assertEquals(await Deno.stat(join(snap.env.SNAP_DATA, "params")).then(() => true, () => false), false);
    await snap.setConfig({ ...(await snap.config()), identity: { "allow-insecure-http": true } });
    const accepted = await runIn(snap, hook);
    assertEquals(accepted.code, 0, accepted.stderr);
    assertEquals(
      JSON.parse(await Deno.readTextFile(join(snap.env.SNAP_DATA, "params"))).url,
      "http://identity.example.com",
    );
  } finally {
    await snap.remove();
  }
});

Deno.test("configure hook: the same URL again after unregister writes params; unset url removes them", async () => {
  const snap = await fakeSnap();
  try {
    const params = join(snap.env.SNAP_DATA, "params");
    const exists = () => Deno.stat(params).then(() => true, () => false);
    const url = "https://identity.example.com:8030";
    await runIn(snap, hook);
    await snap.setConfig({ ...(await snap.config()), url });
    assertEquals((await runIn(snap, hook)).code, 0);
    assertOk(await exists());
    assertEquals((await runIn(snap, join(snap.env.SNAP, "bin/unregister"))).code, 0);
    assertEquals(await exists(), false, "unregister removed params");
    // `snap set iot-agent url=<the same URL>`: snapd runs the hook with an unchanged url
    const again = await runIn(snap, hook);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(JSON.parse(await Deno.readTextFile(params)).url, url, "params written again");
    assertEquals(
      (await snap.calls()).filter((c) => c.startsWith("restart")).at(-1),
      "restart iot-agent.agent",
    );

    const { url: _, ...withoutUrl } = await snap.config();
    await snap.setConfig(withoutUrl); // `snap unset iot-agent url`
    assertEquals((await runIn(snap, hook)).code, 0);
    assertEquals(await exists(), false, "the withdrawn URL is not kept for the next enrollment");
    assertEquals((await runIn(snap, hook)).code, 0, "nothing to do");

    // a Go agent's params, url never set in the snap: a refresh's hook run keeps them
    const goParams = JSON.stringify({ url, path: "/var/snap/iot-agent/current/.secret" });
    await Deno.writeTextFile(params, goParams);
    assertEquals((await runIn(snap, hook)).code, 0);
    assertEquals(await Deno.readTextFile(params), goParams);
  } finally {
    await snap.remove();
  }
});

Deno.test("a parallel install (iot-agent_foo): the hook and unregister act on their own instance's services", async () => {
  const snap = await fakeSnap({ instanceName: "iot-agent_foo" });
  try {
    await runIn(snap, hook);
    await snap.setConfig({ ...(await snap.config()), url: "https://identity.example.com" });
    assertEquals((await runIn(snap, hook)).code, 0);
    await snap.setConfig({ ...(await snap.config()), watchdog: { reboot: false } });
    assertEquals((await runIn(snap, hook)).code, 0);
    const unregister = await runIn(snap, join(snap.env.SNAP, "bin/unregister"));
    assertEquals(unregister.code, 0, unregister.stderr);
    assertMatch(unregister.stdout, /snap set iot-agent_foo url=/);
    assertEquals(
      (await snap.calls()).filter((c) => /^(restart|stop|start) /.test(c)),
      [
        "restart iot-agent_foo.agent",
        "restart iot-agent_foo.watchdog",
        "stop iot-agent_foo.agent",
        "start iot-agent_foo.agent",
      ],
    );
  } finally {
    await snap.remove();
  }
});

Deno.test("unregister in the snap: as root, stops the agent, removes .secret and params, starts it; idempotent", async () => {
  const snap = await fakeSnap();
  try {
    const data = snap.env.SNAP_DATA;
    await Deno.writeTextFile(join(data, ".secret"), "{}");
    await Deno.writeTextFile(join(data, "params"), "{}");
    await Deno.writeTextFile(join(snap.env.SNAP_COMMON, "device-data.bin"), "kept");
    const first = await runIn(snap, join(snap.env.SNAP, "bin/unregister"));
    assertEquals(first.code, 0, first.stderr);
    assertEquals(await snap.calls(), ["stop iot-agent.agent", "start iot-agent.agent"]);
    assertMatch(first.stdout, /removed .*\/\.secret\nremoved .*\/params/);
    assertEquals([...Deno.readDirSync(data)].length, 0);
    assertEquals(await Deno.readTextFile(join(snap.env.SNAP_COMMON, "device-data.bin")), "kept");
    const second = await runIn(snap, join(snap.env.SNAP, "bin/unregister"));
    assertEquals(second.code, 0);
    assertMatch(second.stdout, /nothing to remove/);
    const failing = await runIn(snap, join(snap.env.SNAP, "bin/unregister"), [], {
      FAKE_SNAPCTL_FAIL_STOP: "1",
    });
    assertEquals(failing.code, 1);
    assertMatch(failing.stderr, /snapctl stop iot-agent\.agent failed/);
    assertEquals((await runIn(snap, join(snap.env.SNAP, "bin/unregister"), ["--help"])).code, 0);
    assertEquals((await runIn(snap, join(snap.env.SNAP, "bin/unregister"), ["--force"])).code, 2);
  } finally {
    await snap.remove();
  }
});

Deno.test({
  name: "unregister in the snap refuses a user other than root",
  ...needs("unregister as another user", rootMissing("runuser")),
  async fn() {
    const snap = await fakeSnap();
    try {
      await Deno.chmod(snap.dir, 0o755);
      const denoDir = await Deno.makeTempDir();
      await Deno.chmod(denoDir, 0o777);
      const result = await runIn(snap, "runuser", [
        "-u",
        "nobody",
        "--",
        "env",
        `DENO_DIR=${denoDir}`,
        Deno.execPath(),
        "run",
        "--allow-all",
        join(PROJECT_ROOT, "unregister.ts"),
      ]);
      assertEquals(result.code, 77, result.stderr);
      assertMatch(result.stderr, /must be run as root/);
      assertEquals(await snap.calls(), []);
      await Deno.remove(denoDir, { recursive: true });
    } finally {
      await snap.remove();
    }
  },
});

Deno.test({
  name: "unregister outside a snap removes the files; the running agent returns to waiting for a URL",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      await world.online();
      const env = { SNAP_DATA: world.dataDir, SNAP_COMMON: world.commonDir };
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", join(PROJECT_ROOT, "unregister.ts")],
        env,
        stdout: "piped",
      }).output();
      assertEquals(output.code, 0);
      assertMatch(new TextDecoder().decode(output.stdout), /removed .*\.secret\nremoved .*params/);
      await agent.waitForLine(/was removed \(unregister\): leaving the DMS/);
      await agent.waitForLine(/not configured: waiting for the identity service URL/);
    });
  },
});

Deno.test({
  name: "the compiled dist/agent runs (only where DENORT_BIN provides deno compile's runtime)",
  ignore: !Deno.env.get("DENORT_BIN"),
  async fn() {
    const build = await new Deno.Command("sh", {
      args: ["snap/local/compile.sh"],
      cwd: PROJECT_ROOT,
      stderr: "piped",
    }).output();
    assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));
    for (const binary of ["agent", "unregister"]) {
      const run = await new Deno.Command(join(PROJECT_ROOT, "dist", binary), {
        args: ["--help"],
        stdout: "piped",
      }).output();
      assertEquals(run.code, 0);
      assertMatch(new TextDecoder().decode(run.stdout), /Usage/);
    }
  },
});

/** The snap command lines the README documents: the block that says `tests/e2e/snap_test.ts` runs it. */
function documentedCommandLines(): string[] {
  const readme = Deno.readTextFileSync(join(PROJECT_ROOT, "README.md"));
  const start = readme.indexOf("`tests/e2e/snap_test.ts` runs every line of this block");
  const block = readme.slice(
    readme.indexOf("```sh", start) + 5,
    readme.indexOf("```", readme.indexOf("```sh", start) + 5),
  );
  return block.split("\n").map((line) => line.replace(/#.*$/, "").trim()).filter((line) => line !== "");
}

/** As snapd composes it: the app's `command:` (its program in the snap) with the user's arguments appended. */
function composed(
  snap: FakeSnap,
  line: string,
): { program: string; args: string[]; env: Record<string, string> } {
  const [invoked, ...userArgs] = line.replace(/^sudo /, "").split(/\s+/);
  const app = invoked === snapcraft.name ? invoked : invoked.slice(snapcraft.name.length + 1);
  const definition = snapcraft.apps[app];
  assertOk(definition, `${invoked}: app ${app} in snapcraft.yaml`);
  const [program, ...commandArgs] = definition.command.split(" ");
  return {
    program: join(snap.env.SNAP, program),
    args: [...commandArgs, ...userArgs],
    env: definition.environment ?? {},
  };
}

/** What each documented line must do on a device where the daemons are not running. */
const EXPECTED: Record<string, { code: number; output: RegExp }> = {
  "sudo iot-agent status": { code: 3, output: /^Agent daemon +not running/m },
  "sudo iot-agent status --json": { code: 3, output: /"agent": \{\s+"state": "not started"/ },
  "sudo iot-agent doctor": {
    code: 1,
    output: /^\[( ok |warn|FAIL)\] snapd: [\s\S]*^\[( ok |warn|FAIL)\] disk: /m,
  },
  "sudo iot-agent --help": { code: 0, output: /^Usage:\n {2}agent \[run\]/m },
  "sudo iot-agent --version": { code: 0, output: /^\d+\.\d+\.\d+$/m },
  "sudo iot-agent.unregister": {
    code: 0,
    output: /^stopped iot-agent\.agent$[\s\S]*^started iot-agent\.agent/m,
  },
};

Deno.test({
  name:
    "every snap command line the README documents works as snapd composes it (command: plus the user's arguments)",
  ...E2E,
  async fn() {
    const lines = documentedCommandLines();
    assertEquals(lines.sort(), Object.keys(EXPECTED).sort(), "the README's commands and this test's list");
    const snap = await fakeSnap();
    try {
      for (const line of lines) {
        const { program, args, env } = composed(snap, line);
        const result = await runIn(snap, program, args, env);
        const output = result.stdout + result.stderr;
        assertEquals(result.code, EXPECTED[line].code, `${line} -> ${program} ${args.join(" ")}: ${output}`);
        assertMatch(output, EXPECTED[line].output, line);
      }
      // `sudo iot-agent` alone prints the help: it never starts a daemon by hand
      const alone = composed(snap, "sudo iot-agent");
      const help = await runIn(snap, alone.program, alone.args, alone.env);
      assertEquals(help.code, 0);
      assertMatch(help.stdout, /^Usage:/m);
      // the daemon app takes no commands; the mistake gets the right one named
      const daemon = composed(snap, "sudo iot-agent.agent status");
      const refused = await runIn(snap, daemon.program, daemon.args, daemon.env);
      assertEquals(refused.code, 2);
      assertMatch(refused.stderr, /^agent: unexpected argument "status" \(the command is "agent status"\)/);
    } finally {
      await snap.remove();
    }
  },
});

const postRefresh = join(PROJECT_ROOT, "snap/hooks/post-refresh");

Deno.test({
  name:
    "post-refresh hook: `agent check` passes a revision that can run; a broken state fails the hook (snapd reverts)",
  ...E2E,
  async fn() {
    const snap = await fakeSnap();
    try {
      const good = await runIn(snap, postRefresh);
      assertEquals(good.code, 0, good.stderr);
      assertMatch(good.stdout, /^\[ ok \] settings: every setting is valid$/m);
      assertMatch(good.stdout, /^\[ ok \] agent database: .*agent\.db opens at this revision's schema$/m);
      assertMatch(good.stdout, /^\[ ok \] change database: .*changes\.db opens/m);
      assertMatch(good.stdout, /^\[ ok \] enrollment: not enrolled yet/m);

      await Deno.writeTextFile(join(snap.env.SNAP_DATA, ".secret"), '{"id": "truncated');
      const unreadable = await runIn(snap, postRefresh);
      assertEquals(unreadable.code, 1);
      assertMatch(
        unreadable.stderr,
        /^iot-agent: this revision cannot run on this device; snapd reverts the refresh:$/m,
      );
      assertMatch(unreadable.stderr, /^\[FAIL\] enrollment: /m);
      await Deno.remove(join(snap.env.SNAP_DATA, ".secret"));

      await snap.setConfig({ mqtt: { keepalive: "forever" } });
      const invalid = await runIn(snap, postRefresh);
      assertEquals(invalid.code, 1);
      assertMatch(invalid.stderr, /invalid configuration: mqtt\.keepalive="forever" \(from snap\)/);
    } finally {
      await snap.remove();
    }
  },
});
