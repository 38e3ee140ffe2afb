/** What every action handler receives and returns. Handlers know nothing of MQTT. */
import type { ActionRequest } from "../dms/messages.ts";
import type { Logger } from "../log.ts";
import type { SnapdPort } from "../snapd/client.ts";

/** The DMS protocol generation: `2` (list v2, health hashes) or `legacy` (2021 formats). */
export type DmsProtocol = "2" | "legacy";

/** The enrolled device, as the DMS knows it. */
export interface DeviceIdentity {
  /** Enrollment id. */
  id: string;
  /** Organisation id. */
  organizationId: string;
}

/** The ports and facts a handler may use. */
export interface ActionContext {
  snapd: SnapdPort;
  device: DeviceIdentity;
  protocol: DmsProtocol;
  log: Logger;
}

/** A successful outcome; a failure is thrown as an Error whose message goes to the DMS. */
export interface ActionOutcome {
  result?: unknown;
  /** `"2"` marks a version-2 reply. */
  version?: "2";
}

/** One action. */
export type ActionHandler = (request: ActionRequest, context: ActionContext) => Promise<ActionOutcome>;
