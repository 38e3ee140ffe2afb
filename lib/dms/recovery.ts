/**
 * Exact crash recovery for actions that start a snapd change. Before its snapd request an action is marked
 * "started" together with the newest change id snapd already has for the snap (the baseline). After a restart,
 * the change that action started — if its request reached snapd — is the first change *after* the baseline, of
 * the kind the action starts, for that snap. No clock is involved: snapd numbers its changes in order, so a
 * change spawned just before the mark (the previous action's) can never be taken for this one.
 */
import type { SnapdPort } from "../snapd/port.ts";

/** The newest change id snapd has for `snap`; 0 when it has none. */
export async function newestChangeOf(snapd: Pick<SnapdPort, "changes">, snap: string): Promise<number> {
  const changes = await snapd.changes({ select: "all", for: snap });
  return changes.reduce((newest, change) => Math.max(newest, changeNumber(change.id)), 0);
}

/** What an interrupted action left in snapd. */
export type StartedOutcome = { started: true; changeId: string } | { started: false };

/**
 * Looks for the change an action marked "started" made snapd start: the oldest change of `kind` for `snap`
 * after `baseline`.
 * @throws whatever reading snapd's changes throws (the caller must not guess then)
 */
export async function findStartedChange(
  snapd: Pick<SnapdPort, "changes">,
  mark: { snap: string; kind: string; baseline: number },
): Promise<StartedOutcome> {
  const changes = await snapd.changes({ select: "all", for: mark.snap });
  const candidates = changes
    .filter((change) => change.kind === mark.kind && changeNumber(change.id) > mark.baseline)
    .sort((a, b) => changeNumber(a.id) - changeNumber(b.id));
  return candidates.length > 0 ? { started: true, changeId: candidates[0].id } : { started: false };
}

/** snapd's change ids are decimal numbers, given as strings. */
function changeNumber(id: string): number {
  const number = Number(id);
  return Number.isSafeInteger(number) ? number : 0;
}
