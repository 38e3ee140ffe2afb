/**
 * The local API's subjects and their handlers: a partial mirror of snapd's REST API for other snaps, plus the
 * agent's own status. Handlers are functions of the decoded request and the ports; they know nothing of NATS.
 * Every request gets exactly one reply: on failure `{"error": …}` (snapd subjects) or `{"errorInfo":{"message"}}`
 * (agent subjects). The contract, with JSON Schemas, is `asyncapi.yaml`.
 *
 * A request is checked (JSON, fields, snap name syntax) before it waits for a turn (request_gate.ts): an invalid
 * one is answered at once, never behind the valid ones, and never takes a turn.
 */
import { isSnapName, requireChannel } from "../actions/validation.ts";
import { ZERO_TIME } from "../dms_protocol/device_snap.ts";
import { parseAssertions } from "../snapd/assertions.ts";
import type { SnapdPort } from "../snapd/port.ts";
import type { AgentStatus } from "../agent_status.ts";
import type { ChangeSelection, SnapdSnap } from "../snapd/types.ts";
import { errorMessage } from "../errors.ts";
import type { RequestGate } from "./request_gate.ts";

/** What `v1.iot.agent.status` reports. */
/** The ports of the API. */
export interface NatsApiPorts {
  snapd: SnapdPort;
  /** The agent's current status. */
  status(): AgentStatus;
  /** When set, every write subject answers this error and never reaches snapd (see write_guard.ts). */
  writeRefusal?: string;
  /** The bound of the requests in flight (request_gate.ts). @default unbounded */
  gate?: Pick<RequestGate, "run">;
}

/** A request the handler refuses; its message is the reply's error. */
export class RequestError extends Error {
  override name = "RequestError";
}

/** One subject of the API. */
export interface Subject {
  /** The subject (with `*` where a token varies). */
  subject: string;
  /** Refuses an invalid request (a {@link RequestError}), before it waits for a turn. */
  check?(request: Record<string, unknown>, tokens: string[]): void;
  /** Handles a decoded, checked request; `tokens` are the subject's tokens. */
  handle(request: Record<string, unknown>, ports: NatsApiPorts, tokens: string[]): Promise<unknown>;
  /** The reply to a failure. */
  failure(message: string): unknown;
  /** It changes the device (a snapd POST): refused while the password is the published default. */
  writes?: true;
}

const snapdFailure = (message: string) => ({ error: message });

function assertionsCheck(request: Record<string, unknown>) {
  const type = request.type;
  if (type !== "model" && type !== "serial") throw new RequestError('"type" must be "model" or "serial"');
}

async function assertionsGet(request: Record<string, unknown>, ports: NatsApiPorts) {
  const type = request.type as "model" | "serial";
  const bundle = await ports.snapd.assertions(type);
  const first = bundle.count > 0 ? parseAssertions(bundle.text)[0] : undefined;
  if (!first) throw new RequestError(`the device has no ${type} assertion`);
  return { stream: `${first.text}\n` };
}

/** A snap in the API's shape (the Go agent's `Snap` message). */
function toApiSnap(snap: SnapdSnap) {
  const apps = (snap.apps ?? []).map((app) => ({
    active: app.active === true,
    daemon: app.daemon ?? "",
    enabled: app.enabled === true,
    name: app.name,
  }));
  return {
    ...(apps.length > 0 ? { apps } : {}),
    channel: snap.channel ?? "",
    id: snap.id ?? "",
    installDate: snap["install-date"] ?? ZERO_TIME,
    installedSize: Number(snap["installed-size"] ?? 0),
    name: snap.name,
    revision: String(snap.revision ?? ""),
    status: snap.status ?? "",
    title: snap.title ?? "",
    trackingChannel: snap["tracking-channel"] ?? "",
    type: snap.type ?? "",
    version: snap.version ?? "",
  };
}

async function snapsGet(_request: Record<string, unknown>, ports: NatsApiPorts) {
  return { snaps: (await ports.snapd.snaps("all")).map(toApiSnap) };
}

function appsCheck(request: Record<string, unknown>) {
  const { action, names } = request;
  if (action !== "start" && action !== "stop" && action !== "restart") {
    throw new RequestError('"action" must be "start", "stop" or "restart"');
  }
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== "string")) {
    throw new RequestError('"names" must be a non-empty list of "<snap>" or "<snap>.<app>" names');
  }
  for (const name of names as string[]) {
    const [snap, app, ...rest] = name.split(".");
    if (!isSnapName(snap) || rest.length > 0 || app === "") throw new RequestError(`invalid name "${name}"`);
  }
}

async function appsPost(request: Record<string, unknown>, ports: NatsApiPorts) {
  const action = request.action as "start" | "stop" | "restart";
  return { changeId: await ports.snapd.appsAction(action, request.names as string[]) };
}

/** The channel of a checked switch request. */
function switchChannel(request: Record<string, unknown>): string {
  if (typeof request.channel !== "string") throw new RequestError('"channel" must be a string');
  try {
    return requireChannel(request.channel, "switch");
  } catch (error) {
    throw new RequestError(errorMessage(error));
  }
}

function snapCheck(request: Record<string, unknown>, tokens: string[]) {
  const snap = tokens[4];
  if (!isSnapName(snap)) throw new RequestError(`invalid snap name "${snap}"`);
  if (request.action !== "switch") {
    throw new RequestError(`invalid action "${request.action}": only "switch" is supported`);
  }
  switchChannel(request);
}

async function snapPost(request: Record<string, unknown>, ports: NatsApiPorts, tokens: string[]) {
  const channel = switchChannel(request);
  return { changeId: await ports.snapd.snapAction(tokens[4], "switch", { channel }) };
}

function changesCheck(request: Record<string, unknown>) {
  const { select, for: snap } = request;
  if (select !== undefined && !["all", "in-progress", "ready"].includes(select as string)) {
    throw new RequestError('"select" must be "all", "in-progress" or "ready"');
  }
  if (snap !== undefined && (typeof snap !== "string" || !isSnapName(snap))) {
    throw new RequestError('"for" must be a snap name');
  }
}

async function changesGet(request: Record<string, unknown>, ports: NatsApiPorts) {
  const { select, for: snap } = request;
  return {
    changes: await ports.snapd.changes({
      select: select as ChangeSelection | undefined,
      for: snap as string,
    }),
  };
}

function mqttStatus(_request: Record<string, unknown>, ports: NatsApiPorts) {
  const status = ports.status();
  if (!status.enrolled) {
    return Promise.resolve({
      connected: false,
      errorInfo: { message: "the device is not enrolled yet: there is no connection to the DMS" },
    });
  }
  return Promise.resolve({ connected: status.broker?.connected === true });
}

/** Every subject the agent serves. */
export const SUBJECTS: readonly Subject[] = [
  {
    subject: "v1.snapd.v2.assertions.get",
    check: assertionsCheck,
    handle: assertionsGet,
    failure: snapdFailure,
  },
  { subject: "v1.snapd.v2.snaps.get", handle: snapsGet, failure: snapdFailure },
  {
    subject: "v1.snapd.v2.apps.post",
    check: appsCheck,
    handle: appsPost,
    failure: snapdFailure,
    writes: true,
  },
  {
    subject: "v1.snapd.v2.snaps.*.post",
    check: snapCheck,
    handle: snapPost,
    failure: (message) => ({ changeId: "-1", error: message }),
    writes: true,
  },
  { subject: "v1.snapd.v2.changes.get", check: changesCheck, handle: changesGet, failure: snapdFailure },
  {
    subject: "iot.agent.mqtt.connection.status",
    handle: mqttStatus,
    failure: (message) => ({ connected: false, errorInfo: { message } }),
  },
  {
    subject: "v1.iot.agent.status",
    handle: (_request, ports) => Promise.resolve(ports.status()),
    failure: (message) => ({ errorInfo: { message } }),
  },
  // the pre-AsyncAPI subjects of old clients
  {
    subject: "snapd.v2.assertions.get",
    check: assertionsCheck,
    handle: assertionsGet,
    failure: snapdFailure,
  },
  { subject: "snapd.v2.snaps.get", handle: snapsGet, failure: snapdFailure },
  {
    subject: "snapd.v2.apps.post",
    check: appsCheck,
    handle: appsPost,
    failure: (message) => ({ changeId: "", error: message }),
    writes: true,
  },
];

/** Decodes a request payload: a JSON object; empty, malformed or other JSON is refused. */
export function decodeRequest(payload: Uint8Array): Record<string, unknown> {
  if (payload.length === 0) throw new RequestError("empty request: send a JSON object (at least {})");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (error) {
    throw new RequestError(`malformed request: ${errorMessage(error)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RequestError("malformed request: expected a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Answers one request on `subject`; never throws. */
export async function answer(
  definition: Subject,
  subject: string,
  payload: Uint8Array,
  ports: NatsApiPorts,
): Promise<unknown> {
  // before the payload is read: a refused client learns nothing but why
  if (definition.writes && ports.writeRefusal) return definition.failure(ports.writeRefusal);
  const tokens = subject.split(".");
  try {
    const request = decodeRequest(payload);
    definition.check?.(request, tokens);
    const handle = () => definition.handle(request, ports, tokens);
    return await (ports.gate ? ports.gate.run(handle, payload.length) : handle());
  } catch (error) {
    return definition.failure(errorMessage(error) || "failed");
  }
}
