/**
 * The version-2 health hashes. The DMS only compares them with the previous values of the same device, so they
 * must change exactly when what it stores changes:
 * - `snapListHash`: SHA-256 (hex) of the canonical JSON (sorted keys, compact) of the device's DeviceSnaps
 *   without `config` and `deviceId`, sorted by name then revision;
 * - `installedSnapsHash`: SHA-256 (hex) of the JSON array of the installed snap names, sorted, unique.
 */
import { canonicalJson, sha256Hex } from "../canonical_json.ts";
import type { SnapdSnap } from "../snapd/types.ts";
import { toDeviceSnap } from "./device_snap.ts";

/** The two hashes. */
export interface SnapHashes {
  snapListHash: string;
  installedSnapsHash: string;
}

/** Computes the hashes of snapd's snap list. */
export async function snapHashes(snaps: SnapdSnap[]): Promise<SnapHashes> {
  const entries = snaps
    .map((snap) => {
      const { config: _config, deviceId: _deviceId, ...rest } = toDeviceSnap(snap, "", { services: true });
      return rest;
    })
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.revision - b.revision);
  const names = [...new Set(snaps.map((snap) => snap.name))].sort();
  return {
    snapListHash: await sha256Hex(canonicalJson(entries)),
    installedSnapsHash: await sha256Hex(JSON.stringify(names)),
  };
}
