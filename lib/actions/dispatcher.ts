/**
 * Routes a request to its handler and turns the outcome into exactly one response: an unknown action gets
 * `success:false` with `unhandled action: X`; a handler's error becomes `success:false` with its message.
 */
import type { ActionRequest, ActionResponse } from "../dms_protocol/messages.ts";
import { ackAction } from "./ack.ts";
import type { ActionContext, ActionHandler, ActionOutcome } from "./context.ts";
import { deviceAction } from "./device.ts";
import { listAction } from "./list.ts";
import { logsAction } from "./logs.ts";
import { serverAction } from "./server.ts";
import { serviceAction } from "./services.ts";
import { setconfAction } from "./setconf.ts";
import { snapChange, switchAction } from "./snap_change.ts";
import { confAction, infoAction } from "./snap_details.ts";
import { snapshotAction } from "./snapshot.ts";
import { unregisterAction } from "./unregister.ts";
import { userAction } from "./user.ts";

/** Every action the agent answers, by name. */
export const HANDLERS: Readonly<Record<string, ActionHandler>> = {
  device: deviceAction,
  list: listAction,
  install: snapChange("install"),
  remove: snapChange("remove"),
  refresh: snapChange("refresh"),
  revert: snapChange("revert"),
  enable: snapChange("enable"),
  disable: snapChange("disable"),
  switch: switchAction,
  start: serviceAction("start"),
  stop: serviceAction("stop"),
  restart: serviceAction("restart"),
  conf: confAction,
  setconf: setconfAction,
  info: infoAction,
  ack: ackAction,
  server: serverAction,
  logs: logsAction,
  snapshot: snapshotAction,
  user: userAction,
  unregister: unregisterAction,
};

/**
 * Actions that start a snapd change, with the kind of change snapd records for each (`<action>-snap` for
 * `POST /v2/snaps/<name>`; `switch` is a refresh with a channel). After a restart an action that had started its
 * change must not run again (snapd would do it twice): the delivery unit looks for that change instead.
 */
export const CHANGE_KINDS: Readonly<Record<string, string>> = {
  install: "install-snap",
  remove: "remove-snap",
  refresh: "refresh-snap",
  revert: "revert-snap",
  enable: "enable-snap",
  disable: "disable-snap",
  switch: "refresh-snap",
  start: "service-control",
  stop: "service-control",
  restart: "service-control",
  setconf: "configure-snap",
};

/** Actions that only read: running one again, or without a journal entry, changes nothing. */
export const READ_ONLY_ACTIONS: ReadonlySet<string> = new Set(["device", "list", "info", "conf", "server"]);

/** The snapd change kind `action` starts, or undefined when it starts none. */
export function changeKindOf(action: string): string | undefined {
  return Object.hasOwn(CHANGE_KINDS, action) ? CHANGE_KINDS[action] : undefined;
}

/** A response and what must happen once it is acknowledged. */
export interface ActionReply {
  response: ActionResponse;
  afterReply?: ActionOutcome["afterReply"];
}

/** Runs one request; never throws. */
export async function runAction(
  request: ActionRequest,
  context: ActionContext,
  handlers: Readonly<Record<string, ActionHandler>> = HANDLERS,
): Promise<ActionReply> {
  const base = { action: request.action, id: request.id };
  const handler = Object.hasOwn(handlers, request.action) ? handlers[request.action] : undefined;
  if (!handler) {
    return { response: { ...base, success: false, message: `unhandled action: ${request.action}` } };
  }
  try {
    const outcome = await handler(request, context);
    return {
      response: { ...base, success: true, result: outcome.result, version: outcome.version },
      afterReply: outcome.afterReply,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { response: { ...base, success: false, message: message || "failed" } };
  }
}
