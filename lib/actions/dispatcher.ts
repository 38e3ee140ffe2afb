/**
 * Routes a request to its handler and turns the outcome into exactly one response: an unknown action gets
 * `success:false` with `unhandled action: X`; a handler's error becomes `success:false` with its message.
 */
import type { ActionRequest, ActionResponse } from "../dms/messages.ts";
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
 * Actions that start a snapd change. If the agent stops while one runs, it must not run it again after a restart
 * (snapd would do it twice): it looks for the change snapd started instead.
 */
export const CHANGE_ACTIONS: ReadonlySet<string> = new Set([
  "install",
  "remove",
  "refresh",
  "revert",
  "enable",
  "disable",
  "switch",
  "start",
  "stop",
  "restart",
  "setconf",
]);

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
