/**
 * Every response kind, produced from the DMS's own request payloads (appendix §10.3), decoded against the types
 * the Go DMS expects: `installedSize` and `revision` integers, `config` a JSON string with sorted keys, dates
 * RFC 3339, booleans boolean, task results strings.
 */
import { assertEquals, assertOk } from "../../support/assert.ts";
import { runAction } from "../../../lib/actions/dispatcher.ts";
import { decodeActionRequest, encodeActionResponse } from "../../../lib/dms_protocol/messages.ts";
import { canonicalJson } from "../../../lib/canonical_json.ts";
import { withActionEnv } from "../../support/action_env.ts";
import { makeSnap } from "../../support/fake_snapd.ts";
import { UploadServer } from "../../support/upload_server.ts";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
type Json = Record<string, unknown>;

function isInteger(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value);
}

function checkDeviceSnap(snap: Json, where: string) {
  assertOk(isInteger(snap.installedSize), `${where}.installedSize is an integer`);
  assertOk(isInteger(snap.revision), `${where}.revision is an integer`);
  assertOk(RFC3339.test(snap.installedDate as string), `${where}.installedDate is RFC 3339`);
  assertEquals(typeof snap.devmode, "boolean", `${where}.devmode`);
  for (const key of ["name", "status", "channel", "confinement", "version", "deviceId"]) {
    assertEquals(typeof snap[key], "string", `${where}.${key}`);
  }
  if (snap.config !== undefined) {
    assertEquals(typeof snap.config, "string", `${where}.config is a string`);
    assertEquals(
      canonicalJson(JSON.parse(snap.config as string)),
      snap.config,
      `${where}.config has sorted keys`,
    );
  }
  for (const service of (snap.services ?? []) as Json[]) {
    assertEquals(
      [typeof service.active, typeof service.enabled, typeof service.daemon, typeof service.name],
      [
        "boolean",
        "boolean",
        "string",
        "string",
      ],
    );
  }
}

function checkVersion(version: Json) {
  assertEquals(typeof version.onClassic, "boolean");
  for (const key of ["deviceId", "kernelVersion", "osId", "osVersionId", "series", "version"]) {
    assertEquals(typeof version[key], "string", `version.${key}`);
  }
}

function checkDevice(device: Json) {
  assertOk(RFC3339.test(device.created as string) && RFC3339.test(device.lastRefresh as string));
  for (const key of ["brand", "model", "serial", "deviceId", "orgId"]) {
    assertEquals(typeof device[key], "string");
  }
  checkVersion(device.version as Json);
}

const TASK_ACTIONS = new Set([
  "install",
  "remove",
  "refresh",
  "enable",
  "disable",
  "switch",
  "start",
  "stop",
  "restart",
  "setconf",
]);

Deno.test("every response kind decodes with the types the DMS expects (DMS payloads of appendix §10.3)", async () => {
  const uploads = UploadServer.start();
  try {
    await withActionEnv(async ({ snapd, context }) => {
      snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
      snapd.snaps.push(makeSnap("htop", { revision: "4" })); // a store snap: refresh and switch need one
      snapd.config.set("peer-svc", { title: "Jack", count: 3, nested: { z: true, a: [1, 2] } });
      snapd.logs = [{ timestamp: "2021-06-01T12:00:00Z", message: "hi", sid: "peer-svc.daemon", pid: "1" }];
      const upload = uploads.url("/u");
      const payloads = [
        { action: "device", id: "k1" },
        { action: "list", id: "k2" },
        { action: "install", id: "k3", snap: "hello-world" },
        { action: "refresh", id: "k4", snap: "htop" },
        { action: "disable", id: "k5", snap: "peer-svc" },
        { action: "enable", id: "k6", snap: "peer-svc" },
        { action: "switch", data: "latest/stable", id: "k7", snap: "htop" },
        {
          action: "start",
          data: JSON.stringify({ services: ["peer-svc.daemon"] }),
          id: "k8",
          snap: "peer-svc",
        },
        { action: "stop", data: "{}", id: "k9", snap: "peer-svc" },
        { action: "restart", data: "{}", id: "k10", snap: "peer-svc" },
        { action: "setconf", data: '{"title": "Jack"}', id: "k11", snap: "peer-svc" },
        { action: "conf", id: "k12", snap: "peer-svc" },
        { action: "info", id: "k13", snap: "peer-svc" },
        { action: "server", id: "k14" },
        { action: "logs", data: JSON.stringify({ limit: 100, url: upload }), id: "k15" },
        { action: "snapshot", data: JSON.stringify({ url: upload }), id: "k16", snap: "peer-svc" },
        {
          action: "user",
          data: JSON.stringify({ action: "create", email: "ops@example.com", sudoer: true }),
          id: "k17",
        },
        { action: "remove", id: "k18", snap: "hello-world" },
        { action: "unregister", id: "k19" },
      ];
      for (const payload of payloads) {
        await snapd.idle(); // one change at a time on a snap, as the delivery unit runs them
        const decoded = decodeActionRequest(new TextEncoder().encode(JSON.stringify(payload)));
        assertEquals(decoded.kind, "request");
        if (decoded.kind !== "request") continue;
        const wire = JSON.parse(
          encodeActionResponse((await runAction(decoded.request, context)).response),
        ) as Json;
        const what = `${payload.action}: ${JSON.stringify(wire).slice(0, 300)}`;
        assertEquals([wire.action, wire.id, wire.success], [payload.action, payload.id, true], what);
        if (TASK_ACTIONS.has(payload.action)) assertEquals(typeof wire.result, "string", what);
        const result = wire.result as Json;
        if (payload.action === "list") {
          assertEquals([wire.version, wire.message], ["2", ""]);
          assertOk(
            /^[0-9a-f]{64}$/.test(result.snapListHash as string) &&
              /^[0-9a-f]{64}$/.test(result.installedSnapsHash as string),
          );
          (result.snaps as Json[]).forEach((snap, i) => checkDeviceSnap(snap, `snaps[${i}]`));
        }
        if (payload.action === "conf" || payload.action === "info") checkDeviceSnap(result, payload.action);
        if (payload.action === "device" || payload.action === "unregister") checkDevice(result);
        if (payload.action === "server") checkVersion(result);
      }
    });
  } finally {
    await uploads.stop();
  }
});
