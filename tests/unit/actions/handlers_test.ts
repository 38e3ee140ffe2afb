/** Every DMS action against the fake snapd: success, snapd errors passed through, missing and invalid input. */
import { assertEquals, assertMatch, assertOk } from "../../support/assert.ts";
import type { ActionRequest, ActionResponse } from "../../../lib/dms_protocol/messages.ts";
import { type ActionEnv, run, withActionEnv } from "../../support/action_env.ts";
import { makeSnap } from "../../support/fake_snapd.ts";
import { UploadServer } from "../../support/upload_server.ts";
import { FakeClock } from "../../support/fake_clock.ts";
import { sleep } from "../../support/wait.ts";

let counter = 0;
const request = (action: string, fields: Partial<ActionRequest> = {}): ActionRequest => ({
  id: `id-${++counter}`,
  action,
  snap: "",
  data: "",
  ...fields,
});

function failed(response: ActionResponse): string {
  assertEquals(response.success, false, `expected a failure, got ${JSON.stringify(response)}`);
  return response.message ?? "";
}

function succeeded(response: ActionResponse): unknown {
  assertEquals(response.success, true, `expected success, got ${JSON.stringify(response)}`);
  return response.result;
}

const SNAP_ACTIONS = [
  ["install", "hello-world", "install-snap"],
  ["remove", "peer-svc", "remove-snap"],
  ["refresh", "hello-world", "refresh-snap"], // a store snap: refreshing a local one is snapd's "snap-local"
  ["revert", "peer-svc", "revert-snap"],
  ["enable", "peer-svc", "enable-snap"],
  ["disable", "peer-svc", "disable-snap"],
] as const;

function prepare({ snapd }: ActionEnv, action: string) {
  snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
  if (action === "refresh") snapd.snaps.push(makeSnap("hello-world", { revision: "29" }));
  if (action === "enable") snapd.snaps.find((s) => s.name === "peer-svc")!.status = "installed";
  if (action === "revert") {
    snapd.snaps.push({
      ...snapd.snaps.find((s) => s.name === "peer-svc")!,
      revision: "x2",
      status: "installed",
    });
  }
}

for (const [action, snap, kind] of SNAP_ACTIONS) {
  Deno.test(`${action}: one snapd change, the change id as result; errors and bad input answered`, async () => {
    await withActionEnv(async (env) => {
      prepare(env, action);
      const changeId = succeeded(await run(request(action, { snap }), env.context));
      assertEquals(typeof changeId, "string");
      const posts = env.snapd.requestsTo("POST", `/v2/snaps/${snap}`);
      assertEquals(posts.map((r) => JSON.parse(r.body)), [{ action }]);
      assertEquals(env.snapd.changes.find((c) => c.id === changeId)?.kind, kind);

      assertEquals(failed(await run(request(action), env.context)), `No snap name provided for ${action}`);
      assertMatch(
        failed(await run(request(action, { snap: "Bad_Name!" }), env.context)),
        /^invalid snap name "Bad_Name!"/,
      );
      env.snapd.failNext({ path: `/v2/snaps/${snap}` }, {
        status: 400,
        message: `cannot ${action} "${snap}": nope`,
      });
      assertEquals(
        failed(await run(request(action, { snap }), env.context)),
        `cannot ${action} "${snap}": nope`,
      );
      assertEquals(
        env.snapd.requestsTo("POST", `/v2/snaps/${snap}`).length,
        2,
        "invalid input never reached snapd",
      );
    });
  });
}

Deno.test("install of a snap that does not exist passes snapd's error through", async () => {
  await withActionEnv(async ({ context }) => {
    assertEquals(
      failed(await run(request("install", { snap: "nosuch" }), context)),
      'snap "nosuch" not found',
    );
  });
});

Deno.test("switch: a refresh to the channel in data; channel required and checked", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.snaps.push(makeSnap("hello-world", { revision: "29" }));
    succeeded(await run(request("switch", { snap: "hello-world", data: "latest/stable" }), context));
    assertEquals(JSON.parse(snapd.requestsTo("POST", "/v2/snaps/hello-world")[0].body), {
      action: "refresh",
      channel: "latest/stable",
    });
    assertEquals(
      failed(await run(request("switch", { snap: "peer-svc" }), context)),
      "No channel provided for switch",
    );
    assertMatch(
      failed(await run(request("switch", { snap: "peer-svc", data: "latest/bogus" }), context)),
      /^invalid channel "latest\/bogus"/,
    );
    assertEquals(
      failed(await run(request("switch", { data: "stable" }), context)),
      "No snap name provided for switch",
    );
    for (const channel of ["stable", "2.0", "latest/edge", "22/stable/fix-1", "beta/hotfix"]) {
      await snapd.idle(); // one change at a time on a snap, as the delivery unit runs them
      succeeded(await run(request("switch", { snap: "hello-world", data: channel }), context));
    }
    assertEquals(
      failed(await run(request("switch", { snap: "peer-svc", data: "latest/edge" }), context)),
      "cannot perform operation on local snap",
      "snapd refuses to refresh a sideloaded snap",
    );
  });
});

for (const action of ["start", "stop", "restart"] as const) {
  Deno.test(`${action}: services of the snap only, through POST /v2/apps`, async () => {
    await withActionEnv(async ({ snapd, context }) => {
      succeeded(await run(request(action, { snap: "peer-svc", data: "{}" }), context));
      await snapd.idle(); // one change at a time on a snap, as the delivery unit runs them
      succeeded(
        await run(request(action, { snap: "peer-svc", data: '{"services":["peer-svc.daemon"]}' }), context),
      );
      assertEquals(snapd.requestsTo("POST", "/v2/apps").map((r) => JSON.parse(r.body)), [
        { action, names: ["peer-svc"] },
        { action, names: ["peer-svc.daemon"] },
      ]);
      assertEquals(
        failed(await run(request(action, { data: "{}" }), context)),
        `No snap name provided for ${action}`,
      );
      assertMatch(
        failed(
          await run(
            request(action, { snap: "peer-svc", data: '{"services":["peer-svc2.daemon"]}' }),
            context,
          ),
        ),
        /^invalid service "peer-svc2\.daemon": expected peer-svc or peer-svc\.<app>/,
      );
      assertMatch(
        failed(
          await run(request(action, { snap: "peer-svc", data: '{"services":["peer-svc.hello"]}' }), context),
        ),
        /^snap "peer-svc" has no service "peer-svc\.hello"/,
      );
      assertMatch(
        failed(await run(request(action, { snap: "peer-svc", data: "{not json" }), context)),
        /^invalid data for/,
      );
      assertMatch(
        failed(await run(request(action, { snap: "peer-svc", data: '{"services":"x"}' }), context)),
        /"services" must be a list/,
      );
      assertEquals(
        failed(await run(request(action, { snap: "peer-bbbase", data: "{}" }), context)),
        'snap "peer-bbbase" has no services',
      );
      assertEquals(snapd.requestsTo("POST", "/v2/apps").length, 2, "nothing invalid reached snapd");
      snapd.failNext({ path: "/v2/apps" }, { status: 500, message: "systemctl failed" });
      assertEquals(
        failed(await run(request(action, { snap: "peer-svc", data: "" }), context)),
        "systemctl failed",
      );
    });
  });
}

Deno.test("conf and info: the snap as a DeviceSnap with its configuration and the device id", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.config.set("peer-svc", { title: "Jack", b: { y: 2, x: 1 } });
    for (const action of ["conf", "info"]) {
      const snap = succeeded(await run(request(action, { snap: "peer-svc" }), context)) as Record<
        string,
        unknown
      >;
      assertEquals(snap.name, "peer-svc");
      assertEquals(snap.deviceId, "dev-1", "the device id, not the snap's store id");
      assertEquals(snap.config, '{"b":{"x":1,"y":2},"title":"Jack"}');
      assertEquals(failed(await run(request(action), context)), `No snap name provided for ${action}`);
    }
    assertEquals(
      failed(await run(request("info", { snap: "nosuch" }), context)),
      'cannot retrieve snap "nosuch": snap not installed',
    );
  });
});

Deno.test("setconf: a JSON object in data, numbers as typed; the change id as result", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    succeeded(
      await run(
        request("setconf", { snap: "peer-svc", data: '{"title":"Hello World!","ratio":2.50}' }),
        context,
      ),
    );
    assertEquals(
      snapd.requestsTo("PUT", "/v2/snaps/peer-svc/conf")[0].body,
      '{"title":"Hello World!","ratio":2.50}',
    );
    assertEquals(
      failed(await run(request("setconf", { data: "{}" }), context)),
      "No snap name provided for setconf",
    );
    assertMatch(
      failed(await run(request("setconf", { snap: "peer-svc", data: "" }), context)),
      /^No data provided for setconf/,
    );
    assertMatch(
      failed(await run(request("setconf", { snap: "peer-svc", data: "x" }), context)),
      /^invalid data for setconf: not JSON/,
    );
    assertMatch(
      failed(await run(request("setconf", { snap: "peer-svc", data: "[1]" }), context)),
      /expected a JSON object/,
    );
  });
});

Deno.test("ack: the assertion is added; snapd's refusal passed through", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const assertion = snapd.assertions.get("serial")!;
    assertEquals(await run(request("ack", { data: assertion }), context), {
      action: "ack",
      id: `id-${counter}`,
      success: true,
      result: undefined,
      version: undefined,
    });
    assertEquals(snapd.requestsTo("POST", "/v2/assertions")[0].body, assertion);
    assertEquals(
      failed(await run(request("ack", { data: "serialized-assertion" }), context)),
      "cannot decode request body into assertions: unexpected EOF",
    );
    assertEquals(failed(await run(request("ack"), context)), "No assertion provided for ack");
  });
});

Deno.test("server: the OS and snapd versions; snapd errors explained", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const version = succeeded(await run(request("server"), context)) as Record<string, unknown>;
    assertEquals([version.deviceId, version.osId, version.series, version.onClassic], [
      "dev-1",
      "debian",
      "16",
      true,
    ]);
    snapd.failNext({ path: "/v2/system-info" }, { status: 500, message: "boom" });
    assertEquals(failed(await run(request("server"), context)), "cannot obtain system details: boom");
  });
});

Deno.test("user: create and remove through POST /v2/users; bad data refused before snapd", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const created = succeeded(
      await run(
        request("user", { data: '{"action":"create","email":"ops@example.com","sudoer":true}' }),
        context,
      ),
    );
    assertEquals(created, { created: [{ username: "ops", "ssh-keys": ["ssh-rsa AAAA ops@example.com"] }] });
    assertEquals(JSON.parse(snapd.requestsTo("POST", "/v2/users")[0].body), {
      action: "create",
      email: "ops@example.com",
      sudoer: true,
    });
    succeeded(await run(request("user", { data: '{"action":"remove","username":"ops"}' }), context));
    assertEquals(
      failed(await run(request("user", { data: '{"action":"remove","username":"ops"}' }), context)),
      'user "ops" is not known',
    );
    assertMatch(
      failed(await run(request("user", { data: '{"action":"create"}' }), context)),
      /needs an "email"/,
    );
    assertMatch(
      failed(
        await run(request("user", { data: '{"action":"create","email":"a@b","sudoer":"yes"}' }), context),
      ),
      /"sudoer" must be a boolean/,
    );
    assertMatch(
      failed(await run(request("user", { data: '{"action":"promote"}' }), context)),
      /"action" must be "create" or "remove"/,
    );
    assertEquals(snapd.requestsTo("POST", "/v2/users").length, 3);
  });
});

Deno.test("unregister: the device as result, and the agent is told to clear the enrollment after the reply", async () => {
  await withActionEnv(async ({ context }) => {
    const { runAction } = await import("../../../lib/actions/dispatcher.ts");
    const reply = await runAction(request("unregister"), context);
    assertEquals(reply.afterReply, "unregister");
    assertEquals((reply.response.result as Record<string, unknown>).serial, "PEER0001");
  });
});

Deno.test("logs: a limit outside 1–10,000 lines is refused before snapd is asked", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    for (const limit of [-1, -100, 10_001, 1e9]) {
      assertEquals(
        failed(
          await run(request("logs", { data: JSON.stringify({ url: "https://x/logs", limit }) }), context),
        ),
        'invalid data for logs: "limit" must be a whole number of lines from 1 to 10000',
        `limit ${limit}`,
      );
    }
    assertEquals(snapd.requestsTo("GET", "/v2/logs").length, 0, "no out-of-range limit reached snapd");
  });
});

Deno.test("logs: the journal in Go's line format, PUT with its length, default 100 lines; errors reported", async () => {
  const uploads = UploadServer.start();
  try {
    await withActionEnv(async ({ snapd, context }) => {
      snapd.logs = Array.from({ length: 150 }, (_, i) => ({
        timestamp: `2021-06-01T12:00:${String(i % 60).padStart(2, "0")}.120000000Z`,
        message: `line ${i}`,
        sid: "peer-svc.daemon",
        pid: "42",
      }));
      succeeded(
        await run(
          request("logs", { data: JSON.stringify({ url: uploads.url("/logs"), limit: 2 }) }),
          context,
        ),
      );
      const upload = uploads.received.at(-1)!;
      assertEquals(
        upload.text,
        "[2021-06-01 12:00:28.12 +0000 UTC] 42 peer-svc.daemon line 148\n[2021-06-01 12:00:29.12 +0000 UTC] 42 peer-svc.daemon line 149\n",
      );
      assertEquals([upload.method, upload.contentLength, upload.chunked], [
        "PUT",
        String(upload.body.length),
        false,
      ]);
      succeeded(await run(request("logs", { data: JSON.stringify({ url: uploads.url("/logs") }) }), context));
      assertEquals(uploads.received.at(-1)!.text.split("\n").length - 1, 100);
      assertEquals(snapd.requestsTo("GET", "/v2/logs").map((r) => r.query.get("n")), ["2", "100"]);

      uploads.status = 204;
      succeeded(await run(request("logs", { data: JSON.stringify({ url: uploads.url("/logs") }) }), context));
      uploads.status = 403;
      assertMatch(
        failed(await run(request("logs", { data: JSON.stringify({ url: uploads.url("/logs") }) }), context)),
        /answered HTTP 403: denied/,
      );
      assertMatch(
        failed(await run(request("logs", { data: "{}" }), context)),
        /^No upload URL provided for logs/,
      );
      assertMatch(
        failed(await run(request("logs", { data: '{"url":"https://x","limit":"all"}' }), context)),
        /"limit" must be a whole number/,
      );
      snapd.failNext({ path: "/v2/logs" }, {
        status: 404,
        message: "no matching services",
        kind: "app-not-found",
      });
      assertEquals(
        failed(await run(request("logs", { data: JSON.stringify({ url: uploads.url("/logs") }) }), context)),
        "no matching services",
      );
    });
  } finally {
    await uploads.stop();
  }
});

Deno.test("uploads go to https only unless uploads.allow-http", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    for (const action of ["logs", "snapshot"]) {
      const message = failed(
        await run(request(action, { snap: "peer-svc", data: '{"url":"http://dms.example.com/u"}' }), context),
      );
      assertEquals(
        message,
        `refusing to upload ${action} to http://dms.example.com: only https URLs are allowed (uploads.allow-http)`,
      );
    }
    assertEquals(snapd.requests.length, 0);
  }, { allowHttp: false });
});

Deno.test("snapshot: snapshot the snap, stream its export with its length, answer the set id", async () => {
  const uploads = UploadServer.start();
  try {
    await withActionEnv(async ({ snapd, context }) => {
      snapd.failNext({ path: /^\/v2\/snapshots\/\d+\/export$/ }, {
        status: 400,
        message: "snapshot not ready",
      }, 2);
      const setId = succeeded(
        await run(
          request("snapshot", { snap: "peer-svc", data: JSON.stringify({ url: uploads.url("/snap") }) }),
          context,
        ),
      );
      assertEquals(setId, "3");
      assertEquals(JSON.parse(snapd.requestsTo("POST", "/v2/snaps")[0].body), {
        action: "snapshot",
        snaps: ["peer-svc"],
      });
      assertEquals(
        snapd.requestsTo("GET", "/v2/snapshots/3/export").length,
        3,
        "export retried until available",
      );
      const upload = uploads.received.at(-1)!;
      assertEquals(upload.body, snapd.snapshots.get(3));
      assertEquals([upload.contentLength, upload.chunked], [String(upload.body.length), false]);
      assertEquals(
        failed(await run(request("snapshot", { data: "{}" }), context)),
        "No snap name provided for snapshot",
      );
      assertEquals(
        failed(
          await run(
            request("snapshot", { snap: "nosuch", data: JSON.stringify({ url: uploads.url("/s") }) }),
            context,
          ),
        ),
        'snap "nosuch" is not installed',
      );
    });
  } finally {
    await uploads.stop();
  }
});

Deno.test("a snapd conflict is retried until the other change is done; past snapd.conflict-timeout the error is answered", async () => {
  const clock = new FakeClock();
  await withActionEnv(async ({ snapd, context, logs }) => {
    /** Runs the request, moving the fake clock while it waits for its next retry. */
    const drive = async (promise: Promise<ActionResponse>) => {
      let settled = false;
      promise.finally(() => (settled = true));
      while (!settled) {
        await clock.advance(100);
        await sleep(2); // the fake snapd answers over a real socket
      }
      return await promise;
    };
    snapd.conflictNext("peer-svc", 2);
    succeeded(await drive(run(request("disable", { snap: "peer-svc" }), context)));
    assertEquals(snapd.requestsTo("POST", "/v2/snaps/peer-svc").length, 3);
    assertEquals(logs.records({ message: /snapd is busy, retrying/ }).length, 2);
    snapd.conflictNext("peer-svc", 1000);
    const started = clock.now();
    assertEquals(
      failed(await drive(run(request("enable", { snap: "peer-svc" }), context))),
      'snap "peer-svc" has "install-snap" change in progress',
    );
    const waited = clock.now() - started;
    assertOk(waited <= 1500 + 100, `gave up within snapd.conflict-timeout: waited ${waited} ms`);
    assertOk(snapd.requestsTo("POST", "/v2/snaps/peer-svc").length > 4, "retried meanwhile");
  }, { conflictTimeoutMs: 1500, clock });
});

Deno.test("a service action on a busy snap (snapd's 400 without a kind, fixture 110) is retried like a conflict", async () => {
  const clock = new FakeClock();
  await withActionEnv(async ({ snapd, context }) => {
    const busy = { status: 400, message: 'snap "peer-svc" has "service-control" change in progress' };
    snapd.failNext({ method: "POST", path: "/v2/apps" }, busy, 2);
    const response = run(request("restart", { snap: "peer-svc", data: "{}" }), context);
    let settled = false;
    response.finally(() => (settled = true));
    for (let step = 0; !settled && step < 200; step++) {
      await clock.advance(100);
      await sleep(2); // the fake snapd answers over a real socket
    }
    succeeded(await response);
    assertEquals(snapd.requestsTo("POST", "/v2/apps").length, 3);
  }, { conflictTimeoutMs: 1500, clock });
});

Deno.test("snapd's error text reaches the DMS for every action that calls snapd", async () => {
  const uploads = UploadServer.start();
  try {
    await withActionEnv(async ({ snapd, context }) => {
      const url = JSON.stringify({ url: uploads.url("/u") });
      const cases: [Partial<ActionRequest> & { action: string }, string | RegExp][] = [
        [{ action: "device" }, "/v2/assertions/model"],
        [{ action: "list" }, "/v2/snaps"],
        [{ action: "switch", snap: "peer-svc", data: "latest/edge" }, "/v2/snaps/peer-svc"],
        [{ action: "conf", snap: "peer-svc" }, "/v2/snaps/peer-svc/conf"],
        [{ action: "setconf", snap: "peer-svc", data: '{"a":1}' }, "/v2/snaps/peer-svc/conf"],
        [{ action: "ack", data: snapd.assertions.get("model")! }, "/v2/assertions"],
        [{ action: "snapshot", snap: "peer-svc", data: url }, "/v2/snaps"],
        [{ action: "user", data: '{"action":"create","email":"a@b.c"}' }, "/v2/users"],
        [{ action: "unregister" }, "/v2/assertions/serial"],
        [{ action: "logs", data: url }, "/v2/logs"],
      ];
      for (const [fields, path] of cases) {
        snapd.failNext({ path }, { status: 500, message: `snapd says no to ${fields.action}` });
        const message = failed(await run(request(fields.action, fields), context));
        assertEquals(
          message.endsWith(`snapd says no to ${fields.action}`),
          true,
          `${fields.action}: ${message}`,
        );
      }
    });
  } finally {
    await uploads.stop();
  }
});
