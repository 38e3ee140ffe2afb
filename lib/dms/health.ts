/** Builds the health message: who we are, when, and (version-2 DMS) the snap hashes. */
import type { DmsProtocol } from "../dms_protocol/identity.ts";
import type { Logger } from "../log.ts";
import type { SnapdPort } from "../snapd/port.ts";
import type { Health } from "../dms_protocol/messages.ts";
import { snapHashes } from "../dms_protocol/snap_hashes.ts";
import { errorMessage } from "../errors.ts";

/** Reads what health needs; without snapd the hashes are left out (the DMS then treats it as legacy health). */
export async function buildHealth(
  snapd: Pick<SnapdPort, "snaps">,
  device: { id: string; organizationId: string },
  protocol: DmsProtocol,
  now: Date,
  log: Logger,
): Promise<Health> {
  const health: Health = { deviceId: device.id, orgId: device.organizationId, refresh: now.toISOString() };
  if (protocol === "legacy") return health;
  try {
    return { ...health, ...(await snapHashes(await snapd.snaps())) };
  } catch (error) {
    log.warn(`health without snap hashes: ${errorMessage(error)}`);
    return health;
  }
}
