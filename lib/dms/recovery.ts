/**
 * After a restart, an action that had started a snapd change but whose response was not stored must not run
 * again (snapd would do the work twice). The change it started is found instead: the first change on the same
 * snap spawned after the action was marked started. When there is none, the request never reached snapd and the
 * action can safely run.
 */
import type { SnapdPort } from "../snapd/client.ts";

/** Tolerated clock difference between the agent and snapd's time stamps, in ms. */
const SKEW_MS = 1000;

/** The id of the change snapd started for `snap` at or after `startedAt`, if any. */
export async function findStartedChange(
  snapd: Pick<SnapdPort, "changes">,
  snap: string,
  startedAt: number,
): Promise<string | undefined> {
  const changes = await snapd.changes({ select: "all", for: snap });
  const candidates = changes
    .map((change) => ({ id: change.id, spawned: Date.parse(change["spawn-time"]) }))
    .filter((change) => change.spawned >= startedAt - SKEW_MS)
    .sort((a, b) => a.spawned - b.spawned);
  return candidates[0]?.id;
}
