/**
 * Exact crash recovery for actions that start a snapd change. Before its snapd request an action is marked
 * "started" together with the newest change snapd already has for the snap (the baseline) and whether that change
 * was ready. After a restart, the change that action started — if its request reached snapd — is the first change
 * *after* the baseline, of the kind the action starts, for that snap. No clock is involved in finding it: snapd
 * numbers its changes in order, so a change spawned just before the mark (the previous action's) can never be
 * taken for this one.
 *
 * snapd forgets ready changes, though: every 10 minutes it removes those ready for more than 24 hours, and, when
 * more than 500 are ready, the oldest beyond 500 — always in the order they became ready. So "no such change" means
 * "the request never reached snapd" only when snapd provably still remembers every change that became ready after
 * the mark, which holds when any of these does:
 * - the baseline change, ready at the mark, is still listed (it became ready before any change of this action);
 * - snapd still lists some change that became ready before the mark;
 * - the mark is less than a day old (23 h, for the clocks' sake) and fewer than 500 changes are ready: had snapd
 *   pruned by count since the mark, 500 changes newer than the pruned one would still be listed, none old enough to
 *   go by age.
 * Otherwise the outcome is unknown, and the caller decides from the snap's state or answers that it cannot tell —
 * it never runs the action a second time.
 */
import type { SnapdPort } from "../snapd/port.ts";
import type { SnapdChange } from "../snapd/types.ts";
import { SnapdError } from "../snapd/error.ts";

/** What the started mark records of snapd before the request. */
export interface Baseline {
  /** The newest change id snapd had for the snap; 0 when it had none. */
  change: number;
  /** Whether that change was ready (true when there was none). */
  ready: boolean;
}

/** The newest change snapd has for `snap`, and whether it is ready. */
export async function baselineOf(snapd: Pick<SnapdPort, "changes">, snap: string): Promise<Baseline> {
  const changes = await snapd.changes({ select: "all", for: snap });
  const newest = changes.reduce<SnapdChange | undefined>(
    (best, change) => !best || changeNumber(change.id) > changeNumber(best.id) ? change : best,
    undefined,
  );
  return newest ? { change: changeNumber(newest.id), ready: newest.ready } : { change: 0, ready: true };
}

/** What an interrupted action left in snapd. */
export type StartedOutcome =
  | { started: true; changeId: string }
  | { started: false }
  /** snapd may have forgotten the change: whether the request reached it cannot be told from its changes. */
  | { started: "unknown" };

/** The mark of an action, as recovery reads it. */
export interface StartedMark {
  snap: string;
  kind: string;
  baseline: number;
  /** Whether the baseline change was ready at the mark; unknown for marks of older agents. */
  baselineReady?: boolean;
  /** When the mark was written (wall clock, ms). */
  markedAt: number;
}

/** snapd forgets a ready change after a day; the margin allows for the clocks. */
export const SNAPD_PRUNE_AGE_MS = 23 * 3_600_000;
/** snapd keeps at most this many ready changes. */
export const SNAPD_MAX_READY_CHANGES = 500;

/**
 * Looks for the change an action marked "started" made snapd start: the oldest change of `kind` for `snap` after
 * `baseline`.
 * @throws whatever reading snapd's changes throws (the caller must not guess then)
 */
export async function findStartedChange(
  snapd: Pick<SnapdPort, "changes">,
  mark: StartedMark,
  now: number,
): Promise<StartedOutcome> {
  const changes = await snapd.changes({ select: "all", for: mark.snap });
  const candidates = changes
    .filter((change) => change.kind === mark.kind && changeNumber(change.id) > mark.baseline)
    .sort((a, b) => changeNumber(a.id) - changeNumber(b.id));
  if (candidates.length > 0) return { started: true, changeId: candidates[0].id };
  return await remembersSinceMark(snapd, mark, changes, now) ? { started: false } : { started: "unknown" };
}

/** True when snapd provably still lists every change that became ready after the mark. */
async function remembersSinceMark(
  snapd: Pick<SnapdPort, "changes">,
  mark: StartedMark,
  ofSnap: SnapdChange[],
  now: number,
): Promise<boolean> {
  if (mark.baseline > 0 && mark.baselineReady && ofSnap.some((c) => changeNumber(c.id) === mark.baseline)) {
    return true;
  }
  const ready = (await snapd.changes({ select: "all" })).filter((change) => change.ready);
  if (ready.some((change) => Date.parse(change["ready-time"] ?? "") < mark.markedAt)) return true;
  return now - mark.markedAt < SNAPD_PRUNE_AGE_MS && ready.length < SNAPD_MAX_READY_CHANGES;
}

/** What a snap's state says about an action whose change snapd forgot. */
export type StateVerdict = "done" | "unknown";

/**
 * Decides from the snap's current state whether `action` took effect, where its kind allows it: installed,
 * removed, enabled (active) or disabled as asked. Any other action, or a state that does not show it: unknown.
 */
export async function effectVisible(
  snapd: Pick<SnapdPort, "snap">,
  action: string,
  snap: string,
): Promise<StateVerdict> {
  if (!["install", "remove", "enable", "disable"].includes(action)) return "unknown";
  let status: string | undefined;
  try {
    status = (await snapd.snap(snap)).status;
  } catch (error) {
    if (!(error instanceof SnapdError && error.status === 404)) throw error;
  }
  const done = action === "install"
    ? status !== undefined
    : action === "remove"
    ? status === undefined
    : action === "enable"
    ? status === "active"
    : status === "installed"; // disabled
  return done ? "done" : "unknown";
}

/** snapd's change ids are decimal numbers, given as strings. */
function changeNumber(id: string): number {
  const number = Number(id);
  return Number.isSafeInteger(number) ? number : 0;
}
