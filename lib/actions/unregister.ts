/**
 * `unregister`: answers with the device description (the DMS deletes its twin from it), and once that reply is
 * acknowledged the agent clears its enrollment and returns to waiting for a URL — without exiting.
 */
import type { ActionHandler } from "./context.ts";
import { describeDevice } from "./device.ts";

/** The `unregister` action. */
export const unregisterAction: ActionHandler = async (_request, context) => ({
  result: await describeDevice(context),
  afterReply: "unregister",
});
