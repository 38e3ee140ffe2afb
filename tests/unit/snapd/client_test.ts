import { systemClock } from "../../../lib/clock.ts";
import { assertEquals, assertOk, assertRejects } from "../../support/assert.ts";
import { type SnapdClient } from "../../../lib/snapd/client.ts";
import { isConnectFailure } from "../../../lib/errors.ts";
import { createLogger, MemorySink } from "../../../lib/log.ts";
import { SnapdError } from "../../../lib/snapd/error.ts";
import { canonicalJson } from "../../../lib/canonical_json.ts";
import { ReplaySnapd } from "../../support/replay_snapd.ts";
import { FakeSnapd } from "../../support/fake_snapd.ts";
import { FakeClock } from "../../support/fake_clock.ts";
import { openSnapd } from "../../../lib/adapters/snapd_http.ts";

/** Runs `fn` with a client of a server replaying the captured responses. */
async function withReplay(routes: [string, string, string][], fn: (client: SnapdClient) => Promise<void>) {
  const server = ReplaySnapd.start();
  for (const [method, path, file] of routes) server.route(method, path, file);
  const client = openSnapd({ clock: systemClock, socketPath: server.socketPath, timeoutMs: 5000 });
  try {
    await fn(client);
  } finally {
    client.close();
    server.close();
  }
}

/** Runs `fn` with a fake snapd and a client with time limit `timeoutMs`. */
async function withFake(timeoutMs: number, fn: (fake: FakeSnapd, client: SnapdClient) => Promise<void>) {
  const fake = FakeSnapd.start();
  const client = openSnapd({ clock: systemClock, socketPath: fake.socketPath, timeoutMs });
  try {
    await fn(fake, client);
  } finally {
    client.close();
    await fake.stop();
  }
}

async function snapdError(promise: Promise<unknown>): Promise<SnapdError> {
  return (await assertRejects(promise, SnapdError)) as SnapdError;
}

Deno.test("captured sync responses decode: system info, snaps (plain and chunked), one snap, configuration", async () => {
  await withReplay([
    ["GET", "/v2/system-info", "01-GET-v2-system-info.http"],
    ["GET", "/v2/snaps", "11-GET-v2-snaps.http"],
    ["GET", "/v2/snaps?select=all", "12-GET-v2-snaps-select-all.http"],
    ["GET", "/v2/snaps/peer-svc", "13-GET-v2-snaps-peer-svc.http"],
    ["GET", "/v2/snaps/peer-svc/conf?keys=", "26-GET-v2-snaps-peer-svc-conf-keys-empty.http"],
    ["GET", "/v2/apps?select=service", "71-GET-v2-apps-select-service.http"],
  ], async (client) => {
    const info = await client.systemInfo();
    assertEquals([info.series, info["on-classic"], info["os-release"].id], ["16", true, "debian"]);
    assertEquals((await client.snaps()).map((s) => s.name), ["snapd", "peer-bbbase", "peer-svc"]);
    const all = await client.snaps("all");
    assertEquals(all.map((s) => `${s.name}@${s.revision}`), [
      "peer-bbbase@x1",
      "peer-svc@x1",
      "peer-svc@x2",
      "snapd@x1",
    ]);
    assertEquals((await client.snap("peer-svc")).apps?.[0].daemon, "simple");
    assertEquals(await client.snapConfig("peer-svc"), {});
    assertEquals((await client.apps({ select: "service" }))[0].enabled, true);
  });
});

Deno.test("captured assertion responses: count header honoured, count 0 is an empty stream, chunked bundles", async () => {
  await withReplay([
    ["GET", "/v2/assertions/model", "02-GET-v2-assertions-model.http"],
    ["GET", "/v2/assertions/serial", "03-GET-v2-assertions-serial-count0.http"],
    ["GET", "/v2/assertions/account-key", "04-GET-v2-assertions-account-key.http"],
  ], async (client) => {
    const model = await client.assertions("model");
    assertEquals(model.count, 1);
    assertOk(model.text.startsWith("type: model\n"));
    assertEquals(await client.assertions("serial"), { count: 0, text: "" });
    assertEquals((await client.assertions("account-key")).count, 2);
  });
});

Deno.test("captured async responses give the change id; a snapshot also its set id", async () => {
  await withReplay([
    ["PUT", "/v2/snaps/system/conf", "22-PUT-v2-snaps-system-conf-refresh.timer-202.http"],
    ["POST", "/v2/snaps/peer-svc", "40-POST-v2-snaps-peer-svc-revert-202.http"],
    ["POST", "/v2/apps", "72-POST-v2-apps-stop-202.http"],
    ["POST", "/v2/snaps", "81-POST-v2-snaps-snapshot-202.http"],
  ], async (client) => {
    assertEquals(await client.setSnapConfig("system", { "refresh.timer": "01:00-02:00" }), "41");
    assertOk(/^\d+$/.test(await client.snapAction("peer-svc", "revert")));
    assertEquals(await client.appsAction("stop", ["peer-svc"]), "55");
    assertEquals(await client.snapshot(["peer-svc"]), { changeId: "57", setId: 3 });
  });
});

Deno.test("captured error responses become SnapdError with status, kind, value and snapd's message", async () => {
  await withReplay([
    ["GET", "/v2/snaps/nosuch", "15-GET-v2-snaps-nosuch-404.http"],
    ["GET", "/v2/snaps/system/conf?keys=", "21-GET-v2-snaps-system-conf-500.http"],
    ["GET", "/v2/snaps/peer-svc/conf?keys=greeting", "28-GET-v2-snaps-peer-svc-conf-keys-greeting-400.http"],
    ["POST", "/v2/snaps/peer-svc", "53-POST-v2-snaps-peer-svc-enable-conflict-409.http"],
    ["POST", "/v2/assertions", "05-POST-v2-assertions-junk-400.http"],
    ["GET", "/v2/logs?n=10", "07-GET-v2-logs-n10-no-services-404.http"],
    ["GET", "/v2/changes/99999", "69-GET-v2-changes-nosuch-404.http"],
    ["GET", "/v2/changes?select=bogus", "70-GET-v2-changes-select-bogus-400.http"],
    ["GET", "/v2/snapshots/999/export", "87-GET-v2-snapshots-999-export-400.http"],
  ], async (client) => {
    const notFound = await snapdError(client.snap("nosuch"));
    assertEquals([notFound.status, notFound.kind, notFound.value, notFound.message], [
      404,
      "snap-not-found",
      "nosuch",
      "snap not installed",
    ]);
    const internal = await snapdError(client.snapConfig("system"));
    assertEquals([internal.status, internal.kind], [500, ""]);
    assertOk(internal.message.startsWith("cannot get hostname (pretty)"));
    const option = await snapdError(client.snapConfig("peer-svc", ["greeting"]));
    assertEquals(option.value, { SnapName: "peer-svc", Key: "greeting" });
    const conflict = await snapdError(client.snapAction("peer-svc", "enable"));
    assertEquals([conflict.status, conflict.isConflict], [409, true]);
    assertEquals(conflict.message, 'snap "peer-svc" has "enable-snap" change in progress');
    assertEquals(
      (await snapdError(client.addAssertion("junk"))).message,
      "cannot decode request body into assertions: unexpected EOF",
    );
    assertEquals((await snapdError(Array.fromAsync(client.logs({ n: 10 })))).kind, "app-not-found");
    assertEquals((await snapdError(client.change("99999"))).message, 'cannot find change with id "99999"');
    assertEquals((await snapdError(client.changes({ select: "bogus" as "all" }))).status, 400);
    assertEquals(
      (await snapdError(client.exportSnapshot(999))).message,
      "cannot export 999: no snapshot data found for 999",
    );
  });
});

Deno.test("captured changes (large, chunked) and an empty log stream", async () => {
  await withReplay([
    ["GET", "/v2/changes?select=all", "62-GET-v2-changes-select-all.http"],
    ["GET", "/v2/changes/47", "36-GET-v2-changes-id-install-doing.http"],
    ["GET", "/v2/logs?n=10", "08-GET-v2-logs-n10-empty.http"],
    ["GET", "/v2/snapshots/3/export", "86-GET-v2-snapshots-3-export-truncated.http"],
  ], async (client) => {
    const changes = await client.changes({ select: "all" });
    assertOk(changes.length > 10);
    assertOk(changes.every((c) => typeof c.id === "string" && typeof c.ready === "boolean"));
    const doing = await client.change("47");
    assertEquals([doing.status, doing.ready, doing.tasks?.length], ["Doing", false, 13]);
    assertEquals(await Array.fromAsync(client.logs({ n: 10 })), []);
    const exported = await client.exportSnapshot(3);
    assertEquals(exported.length, 5120);
    await exported.body.cancel();
  });
});

Deno.test("GET is retried while snapd is unreachable, within the time limit", async () => {
  await withFake(10_000, async (fake, client) => {
    await fake.stop();
    setTimeout(() => fake.listen(), 400);
    const snaps = await client.snaps();
    assertEquals(snaps.length, 3);
  });
});

Deno.test("a request that cannot connect (snapd restarting) is retried for any method until snapd is back; logged once", async () => {
  const fake = FakeSnapd.start();
  const logs = new MemorySink();
  const client = openSnapd({
    clock: systemClock,
    socketPath: fake.socketPath,
    timeoutMs: 10_000,
    log: createLogger("test", { level: "debug", sink: logs }),
  });
  try {
    await fake.stop(); // the socket is gone: nothing can be sent
    setTimeout(() => fake.listen(), 800);
    const changeId = await client.snapAction("peer-svc", "disable");
    assertOk(changeId, "the POST went through once snapd was back");
    assertEquals(fake.requestsTo("POST", "/v2/snaps/peer-svc").length, 1, "sent once");
    assertEquals(
      logs.records({
        level: "warn",
        message: /reaching snapd at .* failed: cannot communicate with server: .*client error \(Connect\)/,
      }).length,
      1,
    );
    assertEquals(
      logs.records({ level: "info", message: /reaching snapd at .* succeeded after \d+ failed attempt/ })
        .length,
      1,
    );
  } finally {
    client.close();
    await fake.stop();
  }
});

Deno.test("a POST that failed after it was sent is never retried (snapd may have started a change)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/snapd.socket`;
  const listener = Deno.listen({ transport: "unix", path });
  let requests = 0;
  const serving = (async () => {
    for await (const connection of listener) {
      requests++;
      await connection.read(new Uint8Array(4096)); // the request arrives; the connection drops before an answer
      connection.close();
    }
  })();
  const clock = new FakeClock();
  const client = openSnapd({ socketPath: path, timeoutMs: 10_000, clock });
  try {
    let settled = false;
    const outcome = snapdError(client.snapAction("peer-svc", "disable")).finally(() => (settled = true));
    // time passes (every retry wait would end) until the POST settles: a retry would reach the socket again
    for (let step = 0; step < 40 && !settled; step++) await clock.advance(500);
    const error = await outcome;
    assertOk(error.isTransport);
    assertOk(!/timeout/.test(error.message), `failed at once, not by the time limit: ${error.message}`);
    assertOk(!isConnectFailure(error.cause), "it was sent");
    assertEquals(requests, 1, "snapd saw the POST once: no retry");
  } finally {
    client.close();
    listener.close();
    await serving.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a burst of 30 requests keeps at most snapd.max-requests in flight; every one is answered", async () => {
  await withFake(10_000, async (fake) => {
    const client = openSnapd({ clock: systemClock, socketPath: fake.socketPath, maxRequests: 8 });
    try {
      fake.delayNext({ path: "/v2/snaps" }, 100, 30);
      const answers = await Promise.all(Array.from({ length: 30 }, () => client.snaps()));
      assertEquals(answers.length, 30);
      assertEquals(fake.maxInFlight, 8, "never more than 8 at once");
    } finally {
      client.close();
    }
  });
});

Deno.test("a request that takes longer than the time limit fails with snapd's timeout text", async () => {
  await withFake(300, async (fake, client) => {
    fake.delayNext({ path: "/v2/snaps" }, 1000); // answered after 1 s: without the 300 ms limit it would succeed
    const error = await snapdError(client.snaps());
    assertEquals(
      error.message,
      "cannot communicate with server: timeout exceeded while waiting for response",
    );
    assertOk(error.isTransport);
    await new Promise((resolve) => setTimeout(resolve, 800)); // let the delayed handler finish
  });
});

Deno.test("configuration numbers keep their literal text; logs stream the last n records", async () => {
  await withFake(5000, async (fake, client) => {
    const raw = (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON;
    fake.config.set("peer-svc", { title: "Hello", big: raw("12345678901234567890"), ratio: raw("2.50") });
    fake.logs = [
      { timestamp: "2026-01-01T00:00:00.12Z", message: "started", sid: "peer-svc.daemon", pid: "42" },
      { timestamp: "2026-01-01T00:00:01Z", message: "running", sid: "peer-svc.daemon", pid: "42" },
    ];
    assertEquals(
      canonicalJson(await client.snapConfig("peer-svc")),
      '{"big":12345678901234567890,"ratio":2.50,"title":"Hello"}',
    );
    assertEquals((await Array.fromAsync(client.logs({ n: 1 }))).map((e) => e.message), ["running"]);
    assertEquals((await Array.fromAsync(client.logs({ n: -1 }))).length, 2);
    assertEquals(fake.requestsTo("GET", "/v2/logs").map((r) => r.query.get("n")), ["1", "-1"]);
  });
});

Deno.test("users, changes and abort against the fake", async () => {
  await withFake(5000, async (fake, client) => {
    assertEquals(await client.users({ action: "create", email: "ops@example.com", sudoer: true }), {
      created: [{ username: "ops", "ssh-keys": ["ssh-rsa AAAA ops@example.com"] }],
    });
    assertEquals(await client.users({ action: "remove", username: "ops" }), {
      removed: [{ username: "ops" }],
    });
    const hung = fake.addChange("install-snap", 'Install "stuck" snap', "Doing", { "snap-names": ["stuck"] });
    assertEquals((await client.changes()).map((c) => c.id), [hung.id]);
    assertEquals((await client.changes({ select: "ready" })).length, 0);
    const aborted = await client.abortChange(hung.id);
    assertEquals(
      [aborted.status, aborted.ready],
      ["Abort", false],
      "snapd: still in progress after an abort",
    );
    assertEquals(JSON.parse(fake.requestsTo("POST", `/v2/changes/${hung.id}`)[0].body), { action: "abort" });
  });
});

Deno.test("a GET that failed after it was sent is retried: reading twice changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/snapd.socket`;
  const listener = Deno.listen({ transport: "unix", path });
  let requests = 0;
  const serving = (async () => {
    for await (const connection of listener) {
      requests++;
      await connection.read(new Uint8Array(4096));
      if (requests > 1) {
        const body = '{"type":"sync","status-code":200,"status":"OK","result":{"version":"2.57.6"}}';
        await connection.write(new TextEncoder().encode(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        ));
      }
      connection.close(); // the first: the request arrived, the connection drops before an answer
    }
  })();
  const clock = new FakeClock();
  const client = openSnapd({ socketPath: path, timeoutMs: 10_000, clock });
  try {
    let settled = false;
    const outcome = client.systemInfo().finally(() => (settled = true));
    for (let step = 0; step < 40 && !settled; step++) await clock.advance(500);
    assertEquals((await outcome).version, "2.57.6");
    assertEquals(requests, 2, "sent again after the first connection dropped");
  } finally {
    client.close();
    listener.close();
    await serving.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
