/**
 * `list`: the active snaps with their configuration. Version 2 (default): `{"version":"2","result":
 * {"snapListHash","installedSnapsHash","snaps":[…]}}` with each snap's `services`; `dms.protocol=legacy`: the
 * 2021 array, and `no snaps installed` for an empty list as upstream.
 */
import { canonicalJson } from "../canonical_json.ts";
import { toDeviceSnap } from "../dms_protocol/device_snap.ts";
import { snapHashes } from "../dms_protocol/snap_hashes.ts";
import type { ActionContext, ActionOutcome } from "./context.ts";
import { errorMessage } from "../errors.ts";

/** The `list` action. */
export async function listAction(_request: unknown, context: ActionContext): Promise<ActionOutcome> {
  const { snapd, device, protocol } = context;
  const snaps = await snapd.snaps();
  const legacy = protocol === "legacy";
  if (legacy && snaps.length === 0) throw new Error("no snaps installed");
  // every configuration read is asked at once: the snapd client keeps `snapd.max-requests` of them in flight
  const configs = await Promise.all(snaps.map(async (snap) => {
    try {
      return canonicalJson(await snapd.snapConfig(snap.name));
    } catch (error) {
      context.log.debug(`list: no configuration for ${snap.name}: ${errorMessage(error)}`);
      return undefined;
    }
  }));
  const deviceSnaps = snaps.map((snap, i) =>
    toDeviceSnap(snap, device.id, { config: configs[i], services: !legacy })
  );
  if (legacy) return { result: deviceSnaps };
  const { snapListHash, installedSnapsHash } = await snapHashes(snaps);
  return { version: "2", result: { installedSnapsHash, snapListHash, snaps: deviceSnaps } };
}
