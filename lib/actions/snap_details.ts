/**
 * `conf` and `info`: one snap in the DMS's DeviceSnap shape, with its configuration (the Go agent's `conf`
 * returned nothing and its `info` put the snap's store id in `deviceId`; the DMS needs the snap and the device id).
 */
import { canonicalJson } from "../canonical_json.ts";
import { toDeviceSnap } from "../dms_protocol/device_snap.ts";
import type { ActionContext, ActionHandler } from "./context.ts";
import { requireSnap } from "./validation.ts";
import { errorMessage } from "../errors.ts";

async function describeSnap(snap: string, context: ActionContext) {
  // the snap and its configuration are read at once
  const [info, config] = await Promise.all([
    context.snapd.snap(snap).catch((error) => {
      throw new Error(`cannot retrieve snap "${snap}": ${errorMessage(error)}`, { cause: error });
    }),
    context.snapd.snapConfig(snap),
  ]);
  return toDeviceSnap(info, context.device.id, {
    config: canonicalJson(config),
    services: context.protocol !== "legacy",
  });
}

/** `conf`: the snap with its configuration. */
export const confAction: ActionHandler = async (request, context) => ({
  result: await describeSnap(requireSnap(request.snap, "conf"), context),
});

/** `info`: the snap (with its configuration). */
export const infoAction: ActionHandler = async (request, context) => ({
  result: await describeSnap(requireSnap(request.snap, "info"), context),
});
