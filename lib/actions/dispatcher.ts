/**
 * Routes a request to its handler and turns the outcome into exactly one response: an unknown action gets
 * `success:false` with `unhandled action: X`; a handler's error becomes `success:false` with its message.
 */
import type { ActionRequest, ActionResponse } from "../dms/messages.ts";
import type { ActionContext, ActionHandler } from "./context.ts";
import { deviceAction } from "./device.ts";
import { listAction } from "./list.ts";
import { serverAction } from "./server.ts";

/** Every action the agent answers, by name. */
export const HANDLERS: Readonly<Record<string, ActionHandler>> = {
  device: deviceAction,
  list: listAction,
  server: serverAction,
};

/** Runs one request; never throws. */
export async function runAction(
  request: ActionRequest,
  context: ActionContext,
  handlers: Readonly<Record<string, ActionHandler>> = HANDLERS,
): Promise<ActionResponse> {
  const base = { action: request.action, id: request.id };
  const handler = Object.hasOwn(handlers, request.action) ? handlers[request.action] : undefined;
  if (!handler) return { ...base, success: false, message: `unhandled action: ${request.action}` };
  try {
    const outcome = await handler(request, context);
    return { ...base, success: true, result: outcome.result, version: outcome.version };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ...base, success: false, message: message || "failed" };
  }
}
