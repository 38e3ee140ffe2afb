/**
 * The fake snapd is never kinder than snapd: every strict rule it follows is checked here against the answer a
 * real snapd 2.57.6 gave in the same state (tests/fixtures/snapd/, captured by tests/tools/capture_snapd.ts) — status,
 * message, kind and value, and the state of changes over time.
 */
import type { SnapdChange } from "../../../lib/snapd/types.ts";
import { assertEquals } from "../../support/assert.ts";
import { FakeSnapd, makeSnap } from "../../support/fake_snapd.ts";
import { fixtureJson, snapdFixture } from "../../support/fixtures.ts";

interface Envelope {
  type: string;
  "status-code": number;
  result: { message?: string; kind?: string; value?: unknown } & Partial<SnapdChange>;
  change?: string;
}

/** Sends a request to the fake as a client would (JSON bodies with their Content-Type unless told otherwise). */
async function send(
  fake: FakeSnapd,
  method: string,
  path: string,
  body?: unknown,
  contentType: string | undefined = "application/json",
): Promise<Envelope> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: fake.socketPath } });
  try {
    const response = await fetch(`http://localhost${path}`, {
      method,
      client,
      headers: body !== undefined && contentType ? { "Content-Type": contentType } : {},
      // bytes, so that fetch adds no Content-Type of its own
      body: body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body)),
    });
    return await response.json();
  } finally {
    client.close();
  }
}

/** What a test compares of an answer: status, type, and the error's message, kind and value. */
function essence(envelope: Envelope) {
  const { message, kind, value } = envelope.result ?? {};
  return { type: envelope.type, status: envelope["status-code"], message, kind, value };
}

function captured(file: string) {
  return essence(fixtureJson<Envelope>(file));
}

async function withFake(fn: (fake: FakeSnapd) => Promise<void>) {
  const fake = FakeSnapd.start();
  try {
    await fn(fake);
  } finally {
    await fake.idle();
    await fake.stop();
  }
}

Deno.test("the fake answers requests the way the captured snapd did", async () => {
  await withFake(async (fake) => {
    const cases: [string, string, string, unknown?, string?][] = [
      ["100-POST-v2-snaps-peer-svc-enable-no-content-type-400.http", "POST", "/v2/snaps/peer-svc", {
        action: "enable",
      }, ""],
      ["101-POST-v2-snaps-snapshot-no-content-type-400.http", "POST", "/v2/snaps", {
        action: "snapshot",
        snaps: ["peer-svc"],
      }, ""],
      ["101-POST-v2-snaps-snapshot-text-plain-400.http", "POST", "/v2/snaps", {
        action: "snapshot",
        snaps: ["peer-svc"],
      }, "text/plain;charset=UTF-8"],
      ["104-GET-v2-assertions-bogus-400.http", "GET", "/v2/assertions/bogus"],
      ["105-POST-v2-snaps-nosuch-enable-400.http", "POST", "/v2/snaps/nosuch", { action: "enable" }],
      ["105-POST-v2-snaps-nosuch-disable-400.http", "POST", "/v2/snaps/nosuch", { action: "disable" }],
      ["105-POST-v2-snaps-nosuch-refresh-400.http", "POST", "/v2/snaps/nosuch", { action: "refresh" }],
      ["105-POST-v2-snaps-nosuch-revert-400.http", "POST", "/v2/snaps/nosuch", { action: "revert" }],
      ["105-POST-v2-snaps-nosuch-switch-400.http", "POST", "/v2/snaps/nosuch", {
        action: "switch",
        channel: "latest/edge",
      }],
      ["61-POST-v2-snaps-peer-svc-remove-not-installed-400.http", "POST", "/v2/snaps/nosuch", {
        action: "remove",
      }],
      ["43-POST-v2-snaps-peer-svc-refresh-local-400.http", "POST", "/v2/snaps/peer-svc", {
        action: "refresh",
      }],
      ["44-POST-v2-snaps-peer-svc-refresh-channel-400.http", "POST", "/v2/snaps/peer-svc", {
        action: "refresh",
        channel: "latest/edge",
      }],
      ["78-POST-v2-apps-start-nosuch-404.http", "POST", "/v2/apps", { action: "start", names: ["nosuch"] }],
      ["121-POST-v2-snaps-snapshot-nosuch-400.http", "POST", "/v2/snaps", {
        action: "snapshot",
        snaps: ["nosuch"],
      }],
      ["122-GET-v2-snaps-nosuch-conf-200.http", "GET", "/v2/snaps/nosuch/conf"],
      ["123-GET-v2-apps-names-nosuch.http", "GET", "/v2/apps?names=nosuch"],
      ["124-POST-v2-apps-start-nosuch-app-404.http", "POST", "/v2/apps", {
        action: "start",
        names: ["peer-svc.nosuch"],
      }],
    ];
    for (const [file, method, path, body, contentType] of cases) {
      const answer = essence(await send(fake, method, path, body, contentType));
      const expected = captured(file);
      if (file.startsWith("61-")) expected.message = expected.message?.replace("peer-svc", "nosuch");
      if (file.startsWith("61-")) expected.value = "nosuch";
      assertEquals(answer, expected, file);
    }
    const switched = essence(
      await send(fake, "POST", "/v2/snaps/peer-svc", { action: "switch", channel: "edge" }),
    );
    assertEquals(
      [switched.type, switched.status],
      ["async", 202],
      "switching a local snap is accepted [106]",
    );
    await fake.idle();
    const noType = essence(
      await send(fake, "POST", "/v2/apps", { action: "start", names: ["peer-svc.daemon"] }, ""),
    );
    await fake.idle();
    assertEquals(
      [noType.type, noType.status],
      ["async", 202],
      "the service endpoint decodes without a type [102]",
    );
  });
});

Deno.test("changes take time, and a request is judged against the state before the running change applies", async () => {
  await withFake(async (fake) => {
    const disable = await send(fake, "POST", "/v2/snaps/peer-svc", { action: "disable" });
    assertEquals(disable["status-code"], 202);
    const racing = essence(await send(fake, "POST", "/v2/snaps/peer-svc", { action: "enable" }));
    assertEquals(racing, captured("116-POST-v2-snaps-peer-svc-enable-racing-400.http"));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const running = (await send(fake, "GET", `/v2/changes/${disable.change}`)).result;
    const capturedRunning = fixtureJson<Envelope>("117-GET-v2-changes-id-disable-just-started.http").result;
    assertEquals([running.kind, running.status, running.ready], [
      capturedRunning.kind,
      capturedRunning.status,
      capturedRunning.ready,
    ]);
    const conflict = essence(await send(fake, "PUT", "/v2/snaps/peer-svc/conf", { greeting: "hi" }));
    assertEquals(conflict.status, 409);
    assertEquals(conflict.kind, "snap-change-conflict");
    await fake.idle();
    assertEquals((await send(fake, "GET", `/v2/changes/${disable.change}`)).result.status, "Done");
    assertEquals(
      fake.snaps.find((s) => s.name === "peer-svc")?.status,
      "installed",
      "the effect lands when done",
    );
    assertEquals((await send(fake, "POST", "/v2/snaps/peer-svc", { action: "enable" }))["status-code"], 202);
  });
});

Deno.test("a busy snap: 409 for snap changes and configuration, 400 without a kind for services; abort leaves it running", async () => {
  await withFake(async (fake) => {
    fake.changeDurationMs = Infinity; // a hung service-control change
    const stop = await send(fake, "POST", "/v2/apps", { action: "stop", names: ["peer-svc.daemon"] });
    assertEquals(stop["status-code"], 202);
    assertEquals(
      essence(await send(fake, "POST", "/v2/snaps/peer-svc", { action: "disable" })),
      captured("109-POST-v2-snaps-peer-svc-disable-while-busy-409.http"),
    );
    assertEquals(
      essence(await send(fake, "POST", "/v2/apps", { action: "restart", names: ["peer-svc.daemon"] })),
      captured("110-POST-v2-apps-restart-while-busy-400.http"),
    );
    assertEquals(
      essence(await send(fake, "PUT", "/v2/snaps/peer-svc/conf", { greeting: "hi" })),
      captured("111-PUT-v2-snaps-peer-svc-conf-while-busy.http"),
    );
    const aborted = (await send(fake, "POST", `/v2/changes/${stop.change}`, { action: "abort" })).result;
    const capturedAbort = fixtureJson<Envelope>("112-POST-v2-changes-id-abort-doing.http").result;
    assertEquals([aborted.status, aborted.ready], [capturedAbort.status, capturedAbort.ready]);
    assertEquals((await send(fake, "GET", `/v2/changes/${stop.change}`)).result.status, "Abort");
  });
});

Deno.test("configuring a snap without a configure hook ends its change in Error; snapd's own settings do not need one", async () => {
  await withFake(async (fake) => {
    const change = await send(fake, "PUT", "/v2/snaps/peer-svc/conf", { greeting: "hi" });
    assertEquals(change["status-code"], 202, "accepted, as snapd does [29]");
    await fake.idle();
    const ended = (await send(fake, "GET", `/v2/changes/${change.change}`)).result;
    const capturedError = fixtureJson<Envelope>("30-GET-v2-changes-id-configure-error.http").result;
    assertEquals([ended.status, ended.ready, ended.err], [capturedError.status, true, capturedError.err]);
    assertEquals(fake.config.get("peer-svc"), undefined, "nothing was set");

    const core = await send(fake, "PUT", "/v2/snaps/system/conf", { "refresh.timer": "mon,10:00" });
    await fake.idle();
    assertEquals((await send(fake, "GET", `/v2/changes/${core.change}`)).result.status, "Done", "[120]");
  });
});

Deno.test("every request's headers are recorded", async () => {
  await withFake(async (fake) => {
    fake.snaps.push(makeSnap("htop", { revision: "4" }));
    await send(fake, "POST", "/v2/snaps/htop", { action: "refresh" });
    assertEquals(
      fake.requestsTo("POST", "/v2/snaps/htop")[0].headers.get("Content-Type"),
      "application/json",
    );
    assertEquals(snapdFixture("101-POST-v2-snaps-snapshot-no-content-type-400.http").status, 400);
  });
});
