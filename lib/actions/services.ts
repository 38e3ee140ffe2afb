/**
 * `start`, `stop` and `restart`: `data` = `{"services":["<snap>.<app>",…]}` (empty or `{}`: every service of the
 * snap). Each named service must be a service of that snap (snapd's app info), checked before anything runs.
 */
import type { AppsAction } from "../snapd/types.ts";
import { retryOnConflict } from "./conflicts.ts";
import type { ActionHandler } from "./context.ts";
import { parseDataObject, requireServiceNames, requireSnap } from "./validation.ts";

/** The handler of a service action. */
export function serviceAction(action: AppsAction): ActionHandler {
  return async (request, context) => {
    const snap = requireSnap(request.snap, action);
    const names = requireServiceNames(snap, parseDataObject(request.data, action, true), action);
    const info = await context.snapd.snap(snap);
    const services = new Set(
      (info.apps ?? []).filter((app) => app.daemon).map((app) => `${snap}.${app.name}`),
    );
    if (services.size === 0) throw new TypeError(`snap "${snap}" has no services`);
    for (const name of names) {
      if (name !== snap && !services.has(name)) {
        throw new TypeError(
          `snap "${snap}" has no service "${name}" (services: ${[...services].join(", ")})`,
        );
      }
    }
    return { result: await retryOnConflict(() => context.snapd.appsAction(action, names), context) };
  };
}
