import { assertEquals, assertMatch, assertOk } from "../../support/assert.ts";
import { run } from "../../support/action_env.ts";
import type { ActionRequest } from "../../../lib/dms_protocol/messages.ts";
import { withActionEnv } from "../../support/action_env.ts";
import { makeSnap } from "../../support/fake_snapd.ts";
import { parseRevision, ZERO_TIME } from "../../../lib/dms_protocol/device_snap.ts";

const request = (action: string, fields: Partial<ActionRequest> = {}): ActionRequest => ({
  id: `id-${action}`,
  action,
  snap: "",
  data: "",
  ...fields,
});

Deno.test("device: identity from the serial assertion, store from the model, OS version from snapd", async () => {
  await withActionEnv(async ({ context }) => {
    const response = await run(request("device"), context);
    assertEquals(response.success, true);
    const device = response.result as Record<string, unknown>;
    assertEquals(device.brand, "peerbrand");
    assertEquals(device.model, "peer-model");
    assertEquals(device.serial, "PEER0001");
    assertEquals(device.deviceId, "dev-1");
    assertEquals(device.orgId, "org-1");
    assertEquals(device.created, ZERO_TIME);
    assertEquals(device.lastRefresh, ZERO_TIME);
    assertMatch(device.deviceKey as string, /^AcbATQRW[^\n]+\nNSpDSLd4/);
    assertEquals(JSON.stringify(device).includes('"store"'), false, "the fixture model has no store header");
    assertEquals(device.version, {
      deviceId: "dev-1",
      kernelVersion: "6.18.44-fc-v669",
      onClassic: true,
      osId: "debian",
      osVersionId: "12",
      series: "16",
      version: "2.57.6-1+deb12u1+b2",
    });
  });
});

Deno.test("device: the model's store header is reported", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const model = snapd.assertions.get("model")!.replace("series: 16\n", "series: 16\nstore: brandstore\n");
    snapd.assertions.set("model", model);
    assertEquals(
      ((await run(request("device"), context)).result as Record<string, unknown>).store,
      "brandstore",
    );
  });
});

Deno.test("device: without system information the version is omitted, not an error", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.failNext({ path: "/v2/system-info" }, { status: 500, message: "boom" });
    const response = await run(request("device"), context);
    assertEquals(response.success, true);
    assertEquals((response.result as Record<string, unknown>).version, undefined);
  });
});

Deno.test("device: no serial assertion yet, or snapd failing, is a clear failure", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.assertions.set("serial", undefined);
    assertEquals(await run(request("device"), context), {
      action: "device",
      id: "id-device",
      success: false,
      message: "no serial assertion on this device",
    });
    snapd.failNext({ path: "/v2/assertions/model" }, { status: 500, message: "cannot read assertions" });
    assertEquals((await run(request("device"), context)).message, "cannot read assertions");
  });
});

Deno.test("list v2: version 2 reply with hashes and snaps carrying services and config", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.config.set("peer-svc", { title: "Hello", nested: { b: 2, a: 1 } });
    const response = await run(request("list"), context);
    assertEquals(response.version, "2");
    const result = response.result as {
      snapListHash: string;
      installedSnapsHash: string;
      snaps: Record<string, unknown>[];
    };
    assertMatch(result.snapListHash, /^[0-9a-f]{64}$/);
    assertMatch(result.installedSnapsHash, /^[0-9a-f]{64}$/);
    assertEquals(result.snaps.map((s) => s.name), ["snapd", "peer-bbbase", "peer-svc"]);
    const svc = result.snaps[2];
    assertEquals(svc, {
      channel: "",
      config: '{"nested":{"a":1,"b":2},"title":"Hello"}',
      confinement: "devmode",
      deviceId: "dev-1",
      devmode: true,
      installedDate: "2026-11-26T23:36:09.599511183Z",
      installedSize: 4096,
      name: "peer-svc",
      revision: -1,
      services: [{ active: false, daemon: "simple", enabled: true, name: "daemon" }],
      status: "active",
      version: "1.0",
    });
    assertEquals(result.snaps[0].config, "{}");
    assertEquals(result.snaps[0].services, []);
  });
});

Deno.test("list v2: hashes change exactly when the snap list changes", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const hashes = async () => {
      const { snapListHash, installedSnapsHash } = (await run(request("list"), context))
        .result as Record<string, string>;
      return { snapListHash, installedSnapsHash };
    };
    const first = await hashes();
    snapd.config.set("peer-svc", { changed: true });
    assertEquals(await hashes(), first, "config is not part of the hashes");
    snapd.snaps.reverse();
    assertEquals(await hashes(), first, "order does not matter");
    snapd.snaps.find((s) => s.name === "peer-svc")!.apps![0].active = true;
    const serviceStarted = await hashes();
    assertOk(serviceStarted.snapListHash !== first.snapListHash);
    assertEquals(serviceStarted.installedSnapsHash, first.installedSnapsHash);
    snapd.snaps.push(makeSnap("hello-world", { revision: "29" }));
    const installed = await hashes();
    assertOk(installed.installedSnapsHash !== first.installedSnapsHash);
  });
});

Deno.test("list legacy: the 2021 array, no services, and `no snaps installed` for an empty device", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    const response = await run(request("list"), context);
    assertEquals(response.version, undefined);
    const snaps = response.result as Record<string, unknown>[];
    assertEquals(snaps.length, 3);
    assertEquals("services" in snaps[2], false);
    snapd.snaps = [];
    assertEquals((await run(request("list"), context)).message, "no snaps installed");
  }, { protocol: "legacy" });
});

Deno.test("list: a snap whose configuration cannot be read has no config key; snapd errors pass through", async () => {
  await withActionEnv(async ({ snapd, context }) => {
    snapd.failNext({ path: "/v2/snaps/peer-svc/conf" }, { status: 500, message: "cannot get config" });
    const snaps =
      ((await run(request("list"), context)).result as { snaps: Record<string, unknown>[] }).snaps;
    assertEquals("config" in snaps[2], false);
    assertEquals(snaps[0].config, "{}");
    snapd.failNext({ path: "/v2/snaps" }, { status: 500, message: "snapd is busy" });
    assertEquals(await run(request("list"), context), {
      action: "list",
      id: "id-list",
      success: false,
      message: "snapd is busy",
    });
  });
});

Deno.test("revisions are integers: 123 -> 123, x3 -> -3, unset -> 0", () => {
  assertEquals([parseRevision("123"), parseRevision("x3"), parseRevision("unset"), parseRevision("")], [
    123,
    -3,
    0,
    0,
  ]);
});

Deno.test("an unknown action gets `unhandled action: X`; inherited object keys are not actions", async () => {
  await withActionEnv(async ({ context }) => {
    for (const action of ["frobnicate", "", "constructor", "__proto__", "toString"]) {
      assertEquals(await run(request(action), context), {
        action,
        id: `id-${action}`,
        success: false,
        message: `unhandled action: ${action}`,
      });
    }
  });
});
