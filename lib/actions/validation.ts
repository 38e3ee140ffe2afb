/**
 * Input checks made before any snapd call, each failing with a message a human understands (the DMS shows it):
 * snap names as snapd defines them, `<snap>.<app>` service names, channels, JSON `data`, upload URLs.
 */
import { errorMessage } from "../errors.ts";

const SNAP_NAME = /^(?=.*[a-z])[a-z0-9](?:-?[a-z0-9])*$/;
const INSTANCE_KEY = /^[a-z0-9]{1,10}$/;
const APP_NAME = /^[A-Za-z0-9](?:-?[A-Za-z0-9])*$/;
const RISKS = ["stable", "candidate", "beta", "edge"];
const TRACK = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BRANCH = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/;

/** The snap of a request: required, and a valid snap name. @throws {TypeError} */
export function requireSnap(snap: string, action: string): string {
  if (snap === "") throw new TypeError(`No snap name provided for ${action}`);
  if (!isSnapName(snap)) {
    throw new TypeError(
      `invalid snap name "${clip(snap)}": lowercase letters, digits and single hyphens, 1 to 40 characters`,
    );
  }
  return snap;
}

/** True for a snap name (optionally with a parallel-install instance key, `name_key`). */
export function isSnapName(name: string): boolean {
  const [base, key, ...rest] = name.split("_");
  if (rest.length > 0 || (key !== undefined && !INSTANCE_KEY.test(key))) return false;
  return base.length >= 1 && base.length <= 40 && SNAP_NAME.test(base);
}

/** Checks a channel: `[<track>/]<risk>[/<branch>]`, or a track alone. @throws {TypeError} */
export function requireChannel(channel: string, action: string): string {
  if (channel === "") throw new TypeError(`No channel provided for ${action}`);
  if (!isChannel(channel)) {
    throw new TypeError(
      `invalid channel "${clip(channel)}": expected [<track>/]<risk>[/<branch>], e.g. latest/stable`,
    );
  }
  return channel;
}

/** True for a channel snapd accepts. */
export function isChannel(channel: string): boolean {
  const parts = channel.split("/");
  if (parts.length === 1) return TRACK.test(parts[0]);
  if (parts.length === 2) {
    return (TRACK.test(parts[0]) && RISKS.includes(parts[1])) ||
      (RISKS.includes(parts[0]) && BRANCH.test(parts[1]));
  }
  return parts.length === 3 && TRACK.test(parts[0]) && RISKS.includes(parts[1]) && BRANCH.test(parts[2]);
}

/** True for a risk name (`stable`, `candidate`, `beta`, `edge`). */
export function isRisk(value: string): boolean {
  return RISKS.includes(value);
}

/** Parses `data` as a JSON object (empty data is `{}` when `emptyIsObject`). @throws {TypeError} */
export function parseDataObject(
  data: string,
  action: string,
  emptyIsObject = false,
): Record<string, unknown> {
  if (data.trim() === "") {
    if (emptyIsObject) return {};
    throw new TypeError(`No data provided for ${action}: expected a JSON object`);
  }
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (error) {
    throw new TypeError(`invalid data for ${action}: not JSON (${errorMessage(error)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`invalid data for ${action}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The services of a start/stop/restart request: `<snap>` alone (all its services) or `<snap>.<app>` names.
 * @throws {TypeError}
 */
export function requireServiceNames(snap: string, data: Record<string, unknown>, action: string): string[] {
  const services = data.services ?? [];
  if (!Array.isArray(services) || services.some((s) => typeof s !== "string")) {
    throw new TypeError(`invalid data for ${action}: "services" must be a list of "<snap>.<app>" names`);
  }
  for (const name of services as string[]) {
    const [owner, app, ...rest] = name.split(".");
    if (owner !== snap || rest.length > 0 || (app !== undefined && !APP_NAME.test(app))) {
      throw new TypeError(`invalid service "${clip(name)}": expected ${snap} or ${snap}.<app>`);
    }
  }
  return services.length > 0 ? services as string[] : [snap];
}

/** Checks an upload URL: https (or http when allowed), with a host. @throws {TypeError} */
export function requireUploadUrl(value: unknown, action: string, allowHttp: boolean): URL {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`No upload URL provided for ${action}: data needs "url"`);
  }
  const url = URL.parse(value);
  if (!url || url.hostname === "") throw new TypeError(`invalid upload URL for ${action}: "${clip(value)}"`);
  if (url.protocol !== "https:" && !(allowHttp && url.protocol === "http:")) {
    throw new TypeError(
      `refusing to upload ${action} to ${url.protocol}//${url.host}: only https URLs are allowed (uploads.allow-http)`,
    );
  }
  return url;
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
