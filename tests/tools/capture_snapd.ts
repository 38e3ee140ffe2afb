/**
 * Captures the real snapd's answers that the fake snapd's strict rules are built from, into
 * `tests/fixtures/snapd/` (the format of that folder's README; Date headers normalised). Run as root where the
 * real snapd can run:
 *
 *   deno run -A tests/tools/capture_snapd.ts
 *
 * Each exchange is made against a fresh snapd under a private root (tests/support/real_snapd.ts) with the test
 * snaps installed, in the state the exchange's note describes.
 */
import { join } from "node:path";
import { RealSnapd } from "../support/real_snapd.ts";

const FIXTURES = new URL("../fixtures/snapd/", import.meta.url).pathname;
/** `--only 121,122`: write only these fixtures (every exchange still runs, in order: later ones need earlier state). */
const ONLY = (() => {
  const at = Deno.args.indexOf("--only");
  return at < 0 ? undefined : new Set(Deno.args[at + 1].split(","));
})();
const SLOW = "run/systemctl-standin/slow";

/** One raw HTTP/1.1 exchange over the socket; returns the response bytes as received. */
async function exchange(
  socketPath: string,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<Uint8Array> {
  const connection = await Deno.connect({ transport: "unix", path: socketPath });
  const head = [
    `${method} ${path} HTTP/1.1`,
    "Host: localhost",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ...(body ? [`Content-Length: ${new TextEncoder().encode(body).length}`] : []),
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  await connection.write(new TextEncoder().encode(head + body));
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await connection.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  connection.close();
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

async function capture(
  snapd: RealSnapd,
  file: string,
  request: {
    method: string;
    path: string;
    body?: string;
    json?: boolean;
    headers?: Record<string, string>;
    note: string;
  },
): Promise<string> {
  const body = request.body ?? "";
  const headers: Record<string, string> = request.json
    ? { "Content-Type": "application/json" }
    : request.headers ?? {};
  const raw = await exchange(snapd.socketPath, request.method, request.path, body, headers);
  const text = new TextDecoder("latin1").decode(raw)
    .replace(/\r\nDate: [^\r]+\r\n/, "\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
  const header = `# request: ${request.method} ${request.path}\n# body: ${body}\n# note: ${request.note}\n`;
  if (ONLY && !ONLY.has(file.split("-")[0])) return text;
  await Deno.writeFile(join(FIXTURES, file), Uint8Array.from(header + text, (c) => c.charCodeAt(0)));
  console.log(`${file}: ${text.split("\r\n")[0]}`);
  return text;
}

const changeOf = (text: string) => /"change":"(\d+)"/.exec(text)?.[1];

/** Waits until change `id` is ready (not captured). */
async function ready(snapd: RealSnapd, id: string): Promise<void> {
  for (;;) {
    const text = new TextDecoder().decode(
      await exchange(snapd.socketPath, "GET", `/v2/changes/${id}`, "", {}),
    );
    if (/"ready":true/.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const snapd = await RealSnapd.start(["peer-svc"]);
try {
  // what the fake answers for snaps and apps that do not exist
  await capture(snapd, "121-POST-v2-snaps-snapshot-nosuch-400.http", {
    method: "POST",
    path: "/v2/snaps",
    body: '{"action":"snapshot","snaps":["nosuch"]}',
    json: true,
    note: "a snapshot of a snap that is not installed",
  });
  await capture(snapd, "122-GET-v2-snaps-nosuch-conf-200.http", {
    method: "GET",
    path: "/v2/snaps/nosuch/conf",
    note: "the configuration of a snap that is not installed",
  });
  await capture(snapd, "123-GET-v2-apps-names-nosuch.http", {
    method: "GET",
    path: "/v2/apps?names=nosuch",
    note: "the apps of a snap that is not installed",
  });
  await capture(snapd, "124-POST-v2-apps-start-nosuch-app-404.http", {
    method: "POST",
    path: "/v2/apps",
    body: '{"action":"start","names":["peer-svc.nosuch"]}',
    json: true,
    note: "a service the snap does not have",
  });
  // which POSTs look at Content-Type: each instruction is harmless or refused on its merits when decoded
  await capture(snapd, "100-POST-v2-snaps-peer-svc-enable-no-content-type-400.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"enable"}',
    note: "peer-svc enabled; the instruction sent without Content-Type (decoded anyway)",
  });
  await capture(snapd, "101-POST-v2-snaps-snapshot-no-content-type-400.http", {
    method: "POST",
    path: "/v2/snaps",
    body: '{"action":"snapshot","snaps":["peer-svc"]}',
    note: "a multi-snap instruction sent without Content-Type",
  });
  await capture(snapd, "101-POST-v2-snaps-snapshot-text-plain-400.http", {
    method: "POST",
    path: "/v2/snaps",
    body: '{"action":"snapshot","snaps":["peer-svc"]}',
    headers: { "Content-Type": "text/plain;charset=UTF-8" },
    note: "a multi-snap instruction sent as text/plain",
  });
  const start = await capture(snapd, "102-POST-v2-apps-start-no-content-type.http", {
    method: "POST",
    path: "/v2/apps",
    body: '{"action":"start","names":["peer-svc.daemon"]}',
    note: "a service instruction sent without Content-Type",
  });
  if (changeOf(start)) await ready(snapd, changeOf(start)!);
  await capture(snapd, "103-POST-v2-users-no-content-type.http", {
    method: "POST",
    path: "/v2/users",
    body: '{"action":"remove","username":"nosuch"}',
    note: "a user instruction sent without Content-Type",
  });
  await capture(snapd, "104-GET-v2-assertions-bogus-400.http", {
    method: "GET",
    path: "/v2/assertions/bogus",
    note: "an assertion type snapd does not know",
  });
  for (const action of ["enable", "disable", "refresh", "revert", "switch"]) {
    await capture(snapd, `105-POST-v2-snaps-nosuch-${action}-400.http`, {
      method: "POST",
      path: "/v2/snaps/nosuch",
      body: action === "switch" ? '{"action":"switch","channel":"latest/edge"}' : `{"action":"${action}"}`,
      json: true,
      note: `${action} of a snap that is not installed`,
    });
  }
  await capture(snapd, "106-POST-v2-snaps-peer-svc-switch-local-400.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"switch","channel":"latest/edge"}',
    json: true,
    note: "switch of a local (sideloaded) snap, idle",
  });
  // a change that is genuinely running: stopping the service takes 5 s in the systemctl stand-in
  await Deno.mkdir(join(snapd.root, SLOW), { recursive: true });
  await Deno.writeTextFile(join(snapd.root, SLOW, "snap.peer-svc.daemon.service"), "5");
  const stop = await capture(snapd, "107-POST-v2-apps-stop-slow-202.http", {
    method: "POST",
    path: "/v2/apps",
    body: '{"action":"stop","names":["peer-svc.daemon"]}',
    json: true,
    note: "stopping the service takes 5 s (a slow unit)",
  });
  const id = changeOf(stop)!;
  await new Promise((resolve) => setTimeout(resolve, 500));
  await capture(snapd, "108-GET-v2-changes-id-service-stop-doing.http", {
    method: "GET",
    path: `/v2/changes/${id}`,
    note: "0.5 s into the slow stop",
  });
  await capture(snapd, "109-POST-v2-snaps-peer-svc-disable-while-busy-409.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"disable"}',
    json: true,
    note: "disable while the slow service-control change runs",
  });
  await capture(snapd, "110-POST-v2-apps-restart-while-busy-400.http", {
    method: "POST",
    path: "/v2/apps",
    body: '{"action":"restart","names":["peer-svc.daemon"]}',
    json: true,
    note: "restart while the slow service-control change runs",
  });
  await capture(snapd, "111-PUT-v2-snaps-peer-svc-conf-while-busy.http", {
    method: "PUT",
    path: "/v2/snaps/peer-svc/conf",
    body: '{"greeting":"hi"}',
    json: true,
    note: "setconf while the slow service-control change runs",
  });
  await capture(snapd, "112-POST-v2-changes-id-abort-doing.http", {
    method: "POST",
    path: `/v2/changes/${id}`,
    body: '{"action":"abort"}',
    json: true,
    note: "abort of the running service-control change",
  });
  await capture(snapd, "113-GET-v2-changes-id-service-stop-after-abort.http", {
    method: "GET",
    path: `/v2/changes/${id}`,
    note: "right after the abort was answered",
  });
  await ready(snapd, id);
  await capture(snapd, "114-GET-v2-changes-id-service-stop-aborted-ready.http", {
    method: "GET",
    path: `/v2/changes/${id}`,
    note: "once the aborted change is ready",
  });
  await Deno.remove(join(snapd.root, SLOW, "snap.peer-svc.daemon.service"));
  // disable then enable at once: the enable races the disable change
  const disable = await capture(snapd, "115-POST-v2-snaps-peer-svc-disable-202.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"disable"}',
    json: true,
    note: "peer-svc enabled and idle",
  });
  await capture(snapd, "116-POST-v2-snaps-peer-svc-enable-racing-400.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"enable"}',
    json: true,
    note: "sent right after the disable was answered 202 (its change still running)",
  });
  await capture(snapd, "117-GET-v2-changes-id-disable-just-started.http", {
    method: "GET",
    path: `/v2/changes/${changeOf(disable)}`,
    note: "right after the racing enable",
  });
  await ready(snapd, changeOf(disable)!);
  const enable = await capture(snapd, "118-POST-v2-snaps-peer-svc-enable-after-ready-202.http", {
    method: "POST",
    path: "/v2/snaps/peer-svc",
    body: '{"action":"enable"}',
    json: true,
    note: "sent once the disable change was ready",
  });
  await ready(snapd, changeOf(enable)!);
  const conf = await capture(snapd, "119-PUT-v2-snaps-system-conf-202.http", {
    method: "PUT",
    path: "/v2/snaps/system/conf",
    body: '{"refresh.timer":"mon,10:00"}',
    json: true,
    note: "core configuration (snapd's own handler, no hook)",
  });
  await ready(snapd, changeOf(conf)!);
  await capture(snapd, "120-GET-v2-changes-id-system-configure-done.http", {
    method: "GET",
    path: `/v2/changes/${changeOf(conf)}`,
    note: "the core configuration change, ready",
  });
} finally {
  await snapd.stop();
}
