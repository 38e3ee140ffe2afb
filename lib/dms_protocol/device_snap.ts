/**
 * snapd's snap objects in the DMS's `DeviceSnap` shape: `installedSize` and `revision` integers, `installedDate`
 * RFC 3339 (the zero time when snapd gives none), `config` the snap's configuration as a JSON string with sorted
 * keys, and (version-2 DMS) `services` from the snap's daemons.
 */
import type { SnapdSnap } from "../snapd/types.ts";

/** A service of a snap as the version-2 DMS stores it. */
export interface SnapService {
  active: boolean;
  daemon: string;
  enabled: boolean;
  name: string;
}

/** A snap as the DMS decodes it (keys in the Go struct's alphabetical order). */
export interface DeviceSnap {
  channel: string;
  config?: string;
  confinement: string;
  deviceId: string;
  devmode: boolean;
  installedDate: string;
  installedSize: number;
  name: string;
  revision: number;
  services?: SnapService[];
  status: string;
  version: string;
}

/** Go's zero `time.Time` as it serializes. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** snapd's revision notation as an integer: `"123"` -> 123, `"x3"` (local) -> -3, anything else -> 0. */
export function parseRevision(revision: string): number {
  if (/^\d+$/.test(revision)) return Number(revision);
  if (/^x\d+$/.test(revision)) return -Number(revision.slice(1));
  return 0;
}

/** The snap's daemons as DMS services. */
export function snapServices(snap: SnapdSnap): SnapService[] {
  return (snap.apps ?? [])
    .filter((app) => typeof app.daemon === "string" && app.daemon !== "")
    .map((app) => ({
      active: app.active === true,
      daemon: app.daemon as string,
      enabled: app.enabled === true,
      name: app.name,
    }));
}

/** Options of {@link toDeviceSnap}. */
export interface DeviceSnapOptions {
  /** The configuration as canonical JSON text; omitted when unknown. */
  config?: string;
  /** Include `services` (version-2 DMS). */
  services: boolean;
}

/** Maps a snapd snap to a DeviceSnap of device `deviceId`. */
export function toDeviceSnap(snap: SnapdSnap, deviceId: string, options: DeviceSnapOptions): DeviceSnap {
  const installedDate =
    typeof snap["install-date"] === "string" && !Number.isNaN(Date.parse(snap["install-date"]))
      ? snap["install-date"]
      : ZERO_TIME;
  return {
    channel: snap.channel ?? "",
    ...(options.config !== undefined ? { config: options.config } : {}),
    confinement: snap.confinement ?? "",
    deviceId,
    devmode: snap.devmode === true,
    installedDate,
    installedSize: Math.trunc(Number(snap["installed-size"] ?? 0)) || 0,
    name: snap.name,
    revision: parseRevision(String(snap.revision ?? "")),
    ...(options.services ? { services: snapServices(snap) } : {}),
    status: snap.status ?? "",
    version: snap.version ?? "",
  };
}
