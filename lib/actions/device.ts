/**
 * `device`: who this device is — brand, model and serial from its serial assertion, store from its model
 * assertion, the device key, and the OS version (omitted when snapd's system info is unavailable).
 */
import { parseAssertions } from "../snapd/assertions.ts";
import type { ActionContext, ActionOutcome } from "./context.ts";
import { ZERO_TIME } from "../dms_protocol/device_snap.ts";
import { describeVersion, type DeviceVersion } from "./server.ts";
import { errorMessage } from "../errors.ts";

/** The `Device` the DMS decodes (keys alphabetical). */
export interface Device {
  brand: string;
  created: string;
  deviceId: string;
  deviceKey?: string;
  lastRefresh: string;
  model: string;
  orgId: string;
  serial: string;
  store?: string;
  version?: DeviceVersion;
}

/** Builds the device description from snapd. */
export async function describeDevice(context: ActionContext): Promise<Device> {
  const { snapd, device } = context;
  // three independent reads: asked at once, so the answer waits for the slowest, not for the sum
  const [models, serials, version] = await Promise.all([
    snapd.assertions("model"),
    snapd.assertions("serial"),
    describeVersion(context).catch((error) => {
      context.log.warn(`device: system information unavailable: ${errorMessage(error)}`);
      return undefined;
    }),
  ]);
  const model = parseAssertions(models.text).find((a) => a.type === "model");
  const serial = parseAssertions(serials.text).find((a) => a.type === "serial");
  if (!model || !serial) throw new Error(`no ${model ? "serial" : "model"} assertion on this device`);
  return {
    brand: serial.headers["brand-id"] ?? "",
    created: ZERO_TIME,
    deviceId: device.id,
    deviceKey: serial.headers["device-key"] || undefined,
    lastRefresh: ZERO_TIME,
    model: serial.headers.model ?? "",
    orgId: device.organizationId,
    serial: serial.headers.serial ?? "",
    store: model.headers.store || undefined,
    version,
  };
}

/** The `device` action. */
export async function deviceAction(_request: unknown, context: ActionContext): Promise<ActionOutcome> {
  return { result: await describeDevice(context) };
}
