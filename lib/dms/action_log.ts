/**
 * The lines about actions: at `info` for those that change the device, at `debug` for read-only ones — a DMS that
 * asks for `list` every minute must not fill the journal (and the hot path writes nothing it need not) — and a
 * failure always at `info`, whatever the action.
 */
import { READ_ONLY_ACTIONS } from "../actions/dispatcher.ts";
import type { Logger } from "../log.ts";
import type { ActionResponse } from "../dms_protocol/messages.ts";

/** A line about an action, at the level its kind deserves. */
export function logAction(
  log: Logger,
  action: string,
  message: string,
  fields: Record<string, unknown>,
): void {
  if (READ_ONLY_ACTIONS.has(action)) log.debug(message, fields);
  else log.info(message, fields);
}

/** The line that says how an action ended. */
export function announceResponse(log: Logger, response: ActionResponse): void {
  const message = `action ${response.action} ${response.success ? "succeeded" : "failed"}`;
  const fields = { id: response.id, message: response.success ? undefined : response.message };
  if (response.success) logAction(log, response.action, message, fields);
  else log.info(message, fields);
}
