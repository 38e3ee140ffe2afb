import { assertEquals, assertMatch, assertThrows } from "../../support/assert.ts";
import {
  parseRequiredInstall,
  requiredChannel,
  RequiredInstaller,
} from "../../../lib/dms/required_install.ts";
import { KeyedQueue } from "../../../lib/keyed_queue.ts";
import { openAgentDb } from "../../../lib/store/agent_db.ts";
import { createLogger, MemorySink } from "../../../lib/log.ts";
import { systemClock } from "../../../lib/clock.ts";
import { FakeSnapd, makeSnap } from "../../support/fake_snapd.ts";
import { openSnapd } from "../../../lib/adapters/snapd_http.ts";

const bytes = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

Deno.test("the three payload forms; the DMS's swapped channel/track means latest/stable", () => {
  const dms = {
    id: "2F0t",
    snaps: [{ channel: "latest", name: "hello-world", track: "stable" }, { name: "htop" }],
  };
  assertEquals(parseRequiredInstall(bytes(dms)), [
    { name: "hello-world", channel: "latest/stable" },
    { name: "htop", channel: "latest/stable" },
  ]);
  assertEquals(parseRequiredInstall(bytes({ name: "htop", channel: "latest/edge" })), [{
    name: "htop",
    channel: "latest/edge",
  }]);
  assertEquals(parseRequiredInstall(bytes([{ name: "a" }, { name: "b", channel: "2.0/beta" }])), [
    { name: "a", channel: "latest/stable" },
    { name: "b", channel: "2.0/beta" },
  ]);
  assertEquals(requiredChannel({ track: "22", risk: "candidate" }), "22/candidate");
  assertEquals(requiredChannel({ channel: "stable", track: "22" }), "22/stable");
  assertEquals(requiredChannel({ channel: "edge" }), "latest/edge");
  assertThrows(() => parseRequiredInstall(bytes("nope")), TypeError, "not JSON");
  assertThrows(() => parseRequiredInstall(bytes({ id: "x" })), TypeError, "expected");
  assertThrows(
    () => parseRequiredInstall(bytes([{ name: "Bad!" }])),
    TypeError,
    'snap 1 has no valid "name"',
  );
});

async function withInstaller(
  fn: (env: {
    snapd: FakeSnapd;
    installer: RequiredInstaller;
    logs: MemorySink;
    reopen(): Promise<RequiredInstaller>;
  }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  const snapd = FakeSnapd.start();
  const client = openSnapd({ clock: systemClock, socketPath: snapd.socketPath, timeoutMs: 2000 });
  const logs = new MemorySink();
  const log = createLogger("test", { level: "debug", sink: logs });
  const dbs = [await openAgentDb(`${dir}/agent.db`, log)];
  const make = (db = dbs.at(-1)!) =>
    new RequiredInstaller({
      db,
      snapd: client,
      queue: new KeyedQueue(),
      log,
      clock: systemClock,
      backoff: { initialMs: 20, maxMs: 50 },
      conflictTimeoutMs: 1000,
      pollMs: 10,
    });
  const installers = [make()];
  try {
    await fn({
      snapd,
      installer: installers[0],
      logs,
      async reopen() {
        installers.at(-1)!.stop();
        dbs.at(-1)!.close();
        dbs.push(await openAgentDb(`${dir}/agent.db`, log));
        installers.push(make());
        return installers.at(-1)!;
      },
    });
  } finally {
    installers.forEach((i) => i.stop());
    dbs.at(-1)!.close();
    client.close();
    await snapd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("installs what is missing from its channel, skips what is installed, logs each decision", async () => {
  await withInstaller(async ({ snapd, installer, logs }) => {
    snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
    installer.start();
    installer.receive(
      bytes({
        id: "r1",
        snaps: [{ channel: "latest", name: "hello-world", track: "stable" }, { name: "peer-svc" }],
      }),
    );
    await until(() => installer.pending().length === 0, "all installed");
    assertEquals(snapd.requestsTo("POST", /^\/v2\/snaps\//).map((r) => [r.path, JSON.parse(r.body)]), [
      ["/v2/snaps/hello-world", { action: "install", channel: "latest/stable" }],
    ]);
    assertEquals(logs.records({ message: /peer-svc is already installed: skipping/ }).length, 1);
    assertEquals(logs.records({ message: /required snap hello-world installed \(change \d+\)/ }).length, 1);
  });
});

Deno.test("a failing install is retried with backoff until it succeeds; never two installs of a snap at once", async () => {
  await withInstaller(async ({ snapd, installer, logs }) => {
    snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
    snapd.failNext({ method: "POST", path: "/v2/snaps/hello-world" }, {
      status: 400,
      message: "cannot install: store unreachable",
    }, 2);
    installer.receive(bytes({ name: "hello-world" }));
    installer.receive(bytes({ name: "hello-world" })); // the DMS asks again while the first is still being tried
    await until(() => installer.pending().length === 0, "installed after retries");
    assertEquals(snapd.requestsTo("POST", "/v2/snaps/hello-world").length, 3);
    assertEquals(
      logs.records({
        message: /installing required snap hello-world failed: cannot install: store unreachable/,
      }).length,
      2,
    );
  });
});

Deno.test("a change that ends in Error is a failure and is retried", async () => {
  await withInstaller(async ({ snapd, installer }) => {
    snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
    snapd.changeDurationMs = 50;
    const original = snapd.addChange.bind(snapd);
    let first = true;
    snapd.addChange = (kind, summary, status, data) => {
      if (first && kind === "install-snap") {
        first = false;
        snapd.snaps = snapd.snaps.filter((s) => s.name !== "hello-world"); // the install did not happen
        return original(kind, summary, "Error", data);
      }
      return original(kind, summary, status, data);
    };
    installer.receive(bytes([{ name: "hello-world" }]));
    await until(() => installer.pending().length === 0, "installed on the second try");
    assertEquals(snapd.requestsTo("POST", "/v2/snaps/hello-world").length, 2);
  });
});

Deno.test("the pending set survives a restart; a snap the DMS stops asking for is dropped", async () => {
  await withInstaller(async ({ snapd, installer, reopen, logs }) => {
    installer.receive(bytes({ snaps: [{ name: "hello-world" }, { name: "htop" }] })); // not in the store yet: fails
    await until(
      () => logs.records({ message: /installing required snap htop failed/ }).length > 0,
      "a failed attempt",
    );
    const next = await reopen();
    assertEquals(next.pending().map((s) => s.name), ["hello-world", "htop"]);
    snapd.store.set("hello-world", makeSnap("hello-world"));
    next.start();
    next.receive(bytes({ snaps: [{ name: "hello-world" }] }));
    await until(() => next.pending().length === 0, "installed after the restart");
    assertMatch(logs.records({ message: /htop is no longer required/ })[0].message, /not installing it/);
    assertEquals(snapd.snaps.some((s) => s.name === "hello-world"), true);
  });
});
