/** What every action handler receives and returns. Handlers know nothing of MQTT. */
import type { Clock } from "../clock.ts";
import type { ActionRequest } from "../dms_protocol/messages.ts";
import type { DeviceIdentity, DmsProtocol } from "../dms_protocol/identity.ts";
import type { Logger } from "../log.ts";
import type { SnapdPort } from "../snapd/port.ts";

/** Uploads a stream of known length with HTTP PUT; rejects unless the answer is 2xx. */
export type Upload = (url: URL, body: ReadableStream<Uint8Array>, length: number) => Promise<void>;

/** The ports and facts a handler may use. */
export interface ActionContext {
  snapd: SnapdPort;
  device: DeviceIdentity;
  protocol: DmsProtocol;
  log: Logger;
  clock: Clock;
  upload: Upload;
  /** Allow uploads to plain http URLs. */
  allowHttpUploads: boolean;
  /** How long to retry while snapd reports a conflicting change, in ms. */
  conflictTimeoutMs: number;
}

/** A successful outcome; a failure is thrown as an Error whose message goes to the DMS. */
export interface ActionOutcome {
  result?: unknown;
  /** `"2"` marks a version-2 reply. */
  version?: "2";
  /** Something the agent must do once the reply was acknowledged by the broker. */
  afterReply?: "unregister";
}

/** One action. */
export type ActionHandler = (request: ActionRequest, context: ActionContext) => Promise<ActionOutcome>;
