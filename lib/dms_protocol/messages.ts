/**
 * The DMS's MQTT message formats. Requests `{"id","action","snap","data"}` (all strings; key matching is
 * case-insensitive, as Go's decoder); responses `{"action","id","message","result","success"}` (the Go
 * structs' alphabetical order; the DMS decodes by name, so only the types matter).
 */
import { errorMessage } from "../errors.ts";

/** An action request from the DMS on `devices/sub/<id>`. */
export interface ActionRequest {
  id: string;
  action: string;
  snap: string;
  /** Often JSON inside a string (e.g. `{"services":[…]}`), or a channel for `switch`. */
  data: string;
}

/** The answer to one request. */
export interface ActionResponse {
  action: string;
  id: string;
  success: boolean;
  /** The error text when `success` is false. */
  message?: string;
  result?: unknown;
  /** `"2"` for the version-2 `list` reply; such replies carry every key, `message` included. */
  version?: string;
}

/** The result of decoding a payload. */
export type DecodedRequest =
  | { kind: "request"; request: ActionRequest }
  /** Carries an id: it must be answered with `success:false` and this error. */
  | { kind: "invalid"; id: string; action: string; error: string }
  /** No usable id: log it and drop it. */
  | { kind: "unanswerable"; error: string };

/** Requests larger than this are refused (Part 1 §3). */
export const MAX_REQUEST_BYTES = 256 * 1024;

/** Longer ids are refused: no DMS issues one (they are KSUIDs), and each is kept in the journal and replies. */
export const MAX_ID_LENGTH = 256;

/** Longer actions are refused: the longest action name is a few letters. */
export const MAX_ACTION_LENGTH = 64;

const FIELDS = ["id", "action", "snap", "data"] as const;

/** Decodes and type-checks a request payload. Never throws. */
export function decodeActionRequest(payload: Uint8Array, maxBytes = MAX_REQUEST_BYTES): DecodedRequest {
  if (payload.length > maxBytes) {
    const text = new TextDecoder().decode(payload.subarray(0, 64 * 1024));
    const id = /(?<!\\)"id"\s*:\s*"((?:[^"\\]|\\.){1,256})"/i.exec(text)?.[1];
    const action = /(?<!\\)"action"\s*:\s*"((?:[^"\\]|\\.){0,64})"/i.exec(text)?.[1] ?? "";
    const error = `payload too large: ${payload.length} bytes (limit ${maxBytes})`;
    return id
      ? { kind: "invalid", id: unescape(id), action: unescape(action), error }
      : { kind: "unanswerable", error };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (error) {
    return { kind: "unanswerable", error: `not JSON: ${errorMessage(error)}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { kind: "unanswerable", error: "not a JSON object" };
  }
  const values = pickFields(parsed as Record<string, unknown>);
  const id = values.id;
  if (typeof id !== "string" || id === "") {
    return { kind: "unanswerable", error: id === undefined || id === "" ? "no id" : `"id" is not a string` };
  }
  const action = typeof values.action === "string" ? values.action : "";
  // a refusal carries the id and action cut to their bounds, as the oversized-payload path does: what is echoed
  // and recorded stays small however long the DMS's values were
  const refuse = (error: string): DecodedRequest => ({
    kind: "invalid",
    id: id.slice(0, MAX_ID_LENGTH),
    action: action.slice(0, MAX_ACTION_LENGTH),
    error,
  });
  for (const field of FIELDS) {
    const value = values[field];
    if (value !== undefined && value !== null && typeof value !== "string") {
      const type = Array.isArray(value) ? "array" : typeof value;
      return refuse(`invalid request: "${field}" must be a string, got ${type}`);
    }
  }
  if (id.length > MAX_ID_LENGTH) {
    return refuse(`invalid request: "id" is ${id.length} characters long (limit ${MAX_ID_LENGTH})`);
  }
  if (action.length > MAX_ACTION_LENGTH) {
    return refuse(
      `invalid request: "action" is ${action.length} characters long (limit ${MAX_ACTION_LENGTH})`,
    );
  }
  return {
    kind: "request",
    request: {
      id,
      action,
      snap: (values.snap as string | undefined) ?? "",
      data: (values.data as string | undefined) ?? "",
    },
  };
}

/** Finds the four fields as Go does: an exact key first, else a case-insensitive one (the last one wins). */
function pickFields(object: Record<string, unknown>): Partial<Record<typeof FIELDS[number], unknown>> {
  const out: Partial<Record<typeof FIELDS[number], unknown>> = {};
  for (const field of FIELDS) {
    if (Object.hasOwn(object, field)) {
      out[field] = object[field];
      continue;
    }
    for (const [key, value] of Object.entries(object)) if (key.toLowerCase() === field) out[field] = value;
  }
  return out;
}

function unescape(text: string): string {
  try {
    return JSON.parse(`"${text}"`);
  } catch {
    return text;
  }
}

/** Serializes a response: alphabetical keys; a failure carries `success:false` and its message. */
export function encodeActionResponse(response: ActionResponse): string {
  const out: Record<string, unknown> = { action: response.action, id: response.id };
  if (response.version !== undefined || response.message) out.message = response.message ?? "";
  if (response.result !== undefined) out.result = response.result;
  out.success = response.success;
  if (response.version !== undefined) out.version = response.version;
  return JSON.stringify(out);
}

/** A health message on `devices/health/<id>`. */
export interface Health {
  deviceId: string;
  orgId: string;
  /** RFC 3339 time of the message. */
  refresh: string;
  /** Version-2 DMS: hashes that tell the DMS whether to ask for a new `list`. */
  installedSnapsHash?: string;
  snapListHash?: string;
}

/** Serializes a health message (alphabetical keys, hashes omitted when absent). */
export function encodeHealth(health: Health): string {
  return JSON.stringify({
    deviceId: health.deviceId,
    installedSnapsHash: health.installedSnapsHash,
    orgId: health.orgId,
    refresh: health.refresh,
    snapListHash: health.snapListHash,
  });
}
