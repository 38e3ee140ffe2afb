/** `setconf`: `data` = a JSON object of settings, applied with `PUT /v2/snaps/<snap>/conf`; result = change id. */
import { parseJsonKeepingNumbers } from "../canonical_json.ts";
import { retryOnConflict } from "./conflicts.ts";
import type { ActionHandler } from "./context.ts";
import { parseDataObject, requireSnap } from "./validation.ts";

/** The `setconf` action. */
export const setconfAction: ActionHandler = async (request, context) => {
  const snap = requireSnap(request.snap, "setconf");
  parseDataObject(request.data, "setconf");
  const values = parseJsonKeepingNumbers(request.data) as Record<string, unknown>; // numbers as the user typed them
  return { result: await retryOnConflict(() => context.snapd.setSnapConfig(snap, values), context) };
};
