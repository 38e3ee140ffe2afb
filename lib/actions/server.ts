/** `server`: the OS and snapd version of the device (snapd's system information). */
import type { ActionContext, ActionOutcome } from "./context.ts";
import { errorMessage } from "../errors.ts";

/** The `DeviceVersion` the DMS decodes (keys alphabetical). */
export interface DeviceVersion {
  deviceId: string;
  kernelVersion: string;
  onClassic: boolean;
  osId: string;
  osVersionId: string;
  series: string;
  version: string;
}

/** Reads the version facts from snapd. */
export async function describeVersion(context: ActionContext): Promise<DeviceVersion> {
  const info = await context.snapd.systemInfo();
  return {
    deviceId: context.device.id,
    kernelVersion: info["kernel-version"] ?? "",
    onClassic: info["on-classic"] === true,
    osId: info["os-release"]?.id ?? "",
    osVersionId: info["os-release"]?.["version-id"] ?? "",
    series: info.series ?? "",
    version: info.version ?? "",
  };
}

/** The `server` action. */
export async function serverAction(_request: unknown, context: ActionContext): Promise<ActionOutcome> {
  try {
    return { result: await describeVersion(context) };
  } catch (error) {
    throw new Error(`cannot obtain system details: ${errorMessage(error)}`, { cause: error });
  }
}
