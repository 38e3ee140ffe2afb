/**
 * `install`, `remove`, `refresh`, `revert`, `enable`, `disable` and `switch`: one snapd change on one snap;
 * the reply's result is snapd's change id. `switch` (data = channel) is a refresh to that channel, which is
 * what the DMS means (the Go agent did the same).
 */
import type { SnapAction } from "../snapd/types.ts";
import { retryOnConflict } from "./conflicts.ts";
import type { ActionHandler } from "./context.ts";
import { requireChannel, requireSnap } from "./validation.ts";

/** The handler of a snap action without options. */
export function snapChange(action: SnapAction): ActionHandler {
  return async (request, context) => {
    const snap = requireSnap(request.snap, request.action);
    return { result: await retryOnConflict(() => context.snapd.snapAction(snap, action), context) };
  };
}

/** `switch`: refresh the snap to the channel in `data`. */
export const switchAction: ActionHandler = async (request, context) => {
  const snap = requireSnap(request.snap, "switch");
  const channel = requireChannel(request.data.trim(), "switch");
  return {
    result: await retryOnConflict(() => context.snapd.snapAction(snap, "refresh", { channel }), context),
  };
};
