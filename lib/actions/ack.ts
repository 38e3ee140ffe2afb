/** `ack`: `data` = assertion text, added to the device's assertion database (`POST /v2/assertions`). */
import type { ActionHandler } from "./context.ts";

/** The `ack` action. */
export const ackAction: ActionHandler = async (request, context) => {
  if (request.data.trim() === "") throw new TypeError("No assertion provided for ack");
  await context.snapd.addAssertion(request.data);
  return {};
};
