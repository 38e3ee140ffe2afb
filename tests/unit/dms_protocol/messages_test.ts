import { assertEquals } from "../../support/assert.ts";
import {
  decodeActionRequest,
  encodeActionResponse,
  encodeHealth,
  MAX_REQUEST_BYTES,
} from "../../../lib/dms_protocol/messages.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("decodes the DMS's requests (appendix §10.3 payloads)", () => {
  assertEquals(decodeActionRequest(bytes('{"action":"list","id":"2F0t0YpAt7rYhpmdpfDxh3kXLU5"}')), {
    kind: "request",
    request: { id: "2F0t0YpAt7rYhpmdpfDxh3kXLU5", action: "list", snap: "", data: "" },
  });
  assertEquals(
    decodeActionRequest(
      bytes('{"action":"start","data":"{\\"services\\":[\\"a.b\\"]}","id":"x","snap":"a"}'),
    ),
    { kind: "request", request: { id: "x", action: "start", snap: "a", data: '{"services":["a.b"]}' } },
  );
});

Deno.test("key matching is case-insensitive like Go's decoder; unknown keys are ignored", () => {
  assertEquals(decodeActionRequest(bytes('{"ID":"x","Action":"device","extra":1}')), {
    kind: "request",
    request: { id: "x", action: "device", snap: "", data: "" },
  });
});

Deno.test("a request with an id but wrong types must be answered with the reason", () => {
  assertEquals(decodeActionRequest(bytes('{"id":"x","action":"start","snap":"a","data":{"services":[]}}')), {
    kind: "invalid",
    id: "x",
    action: "start",
    error: 'invalid request: "data" must be a string, got object',
  });
  assertEquals(decodeActionRequest(bytes('{"id":"x","action":7}')).kind, "invalid");
  assertEquals(decodeActionRequest(bytes('{"id":"x","action":"install","snap":["a"]}')), {
    kind: "invalid",
    id: "x",
    action: "install",
    error: 'invalid request: "snap" must be a string, got array',
  });
});

Deno.test("payloads without a usable id, or not JSON at all, cannot be answered", () => {
  for (
    const payload of [
      "",
      "not json",
      "[1,2]",
      "null",
      '{"action":"list"}',
      '{"id":5,"action":"list"}',
      '{"id":""}',
      "\u1000",
    ]
  ) {
    assertEquals(decodeActionRequest(bytes(payload)).kind, "unanswerable", payload);
  }
  assertEquals(decodeActionRequest(new Uint8Array([0xff, 0xfe, 0x7b])).kind, "unanswerable");
});

Deno.test("an oversized payload is refused without parsing it whole, answered when its id can be found", () => {
  const big = `{"action":"setconf","id":"big-1","snap":"a","data":"${"x".repeat(MAX_REQUEST_BYTES)}"}`;
  assertEquals(decodeActionRequest(bytes(big)), {
    kind: "invalid",
    id: "big-1",
    action: "setconf",
    error: `payload too large: ${big.length} bytes (limit ${MAX_REQUEST_BYTES})`,
  });
  const anonymous = `{"data":"${"x".repeat(MAX_REQUEST_BYTES)}"}`;
  assertEquals(decodeActionRequest(bytes(anonymous)).kind, "unanswerable");
});

Deno.test("responses: alphabetical keys; failures carry success:false and the message; v2 carries every key", () => {
  assertEquals(
    encodeActionResponse({ action: "install", id: "x", success: true, result: "42" }),
    '{"action":"install","id":"x","result":"42","success":true}',
  );
  assertEquals(
    encodeActionResponse({ action: "nope", id: "x", success: false, message: "unhandled action: nope" }),
    '{"action":"nope","id":"x","message":"unhandled action: nope","success":false}',
  );
  assertEquals(
    encodeActionResponse({ action: "list", id: "x", success: true, result: { snaps: [] }, version: "2" }),
    '{"action":"list","id":"x","message":"","result":{"snaps":[]},"success":true,"version":"2"}',
  );
});

Deno.test("health: alphabetical keys, hashes only when known", () => {
  assertEquals(
    encodeHealth({ deviceId: "d", orgId: "o", refresh: "2026-01-01T00:00:00.000Z" }),
    '{"deviceId":"d","orgId":"o","refresh":"2026-01-01T00:00:00.000Z"}',
  );
  assertEquals(
    encodeHealth({ deviceId: "d", orgId: "o", refresh: "t", snapListHash: "s", installedSnapsHash: "i" }),
    '{"deviceId":"d","installedSnapsHash":"i","orgId":"o","refresh":"t","snapListHash":"s"}',
  );
});
