/**
 * The life of one action as a state machine, decided without I/O: the journal holds where an action is
 * (`accepted` → `started`, for one that makes a snapd change → `done`), and after a restart the next step follows
 * from that state and from what snapd reports — nothing else. `delivery.ts` does the reading and writing these
 * functions ask for; the decisions are unit-tested alone (tests/unit/dms/action_life_test.ts).
 *
 *   accepted ──(read-only)──────────────────────────────► run ──► done
 *   accepted ──(makes a change)──► mark started ─────────► run ──► done
 *   started (after a restart) ──► what did snapd do?
 *       its change found ────────────────────────────────► answer with it ──► done
 *       no change since the mark ─────────────────────────► run ──► done
 *       snapd forgot that time: the snap's state shows it ► answer "done" ──► done
 *       otherwise (unknown, unreadable, no mark) ─────────► answer with an error, never run twice ──► done
 */
import type { JournalEntry } from "./journal.ts";
import type { ActionRequest, ActionResponse } from "../dms_protocol/messages.ts";
import type { StartedOutcome } from "./recovery.ts";

/** The first step for an action taken from the journal or just accepted. */
export type FirstStep =
  /** read-only: run it */
  | { step: "run" }
  /** it makes a snapd change: record the "started" mark (with snapd's newest change) first, then run it */
  | { step: "mark, then run" }
  /** it was started before a restart: find out what snapd did */
  | { step: "recover" }
  /** it was started by an agent that kept no change marks: it cannot be told apart, so it is answered so */
  | { step: "answer"; response: ActionResponse };

/** What snapd said about a started action's change, or why it could not say. */
export type ChangeLookup = StartedOutcome | { error: string };

/** What the snap's state shows, when snapd forgot the changes of that time. */
export type EffectLookup = "done" | "unknown" | { error: string };

/** What to do with a started action after the lookups. */
export type Recovery = { step: "run" } | { step: "answer"; response: ActionResponse };

/** The first step: from the action's kind (does it make a change?) and its journal entry after a restart. */
export function firstStep(request: ActionRequest, makesChange: boolean, resumed?: JournalEntry): FirstStep {
  if (!makesChange) return { step: "run" };
  if (resumed?.state !== "started") return { step: "mark, then run" };
  if (resumed.baselineChange === undefined) {
    return {
      step: "answer",
      response: unknownOutcome(request, "it was started by an agent without change marks"),
    };
  }
  return { step: "recover" };
}

/**
 * A started action, once snapd has been asked which change it started (`change`) and — only when snapd no longer
 * lists the changes of that time — what the snap's state shows (`effect`). Returns undefined when `effect` is
 * needed and not given yet.
 */
export function recover(
  request: ActionRequest,
  change: ChangeLookup,
  effect?: EffectLookup,
): Recovery | undefined {
  const { action, id, snap } = request;
  if ("error" in change) {
    return {
      step: "answer",
      response: unknownOutcome(request, `snapd's changes cannot be read: ${change.error}`),
    };
  }
  if (change.started === false) return { step: "run" };
  if (change.started === true) {
    return { step: "answer", response: { action, id, success: true, result: change.changeId } };
  }
  if (effect === undefined) return undefined;
  if (typeof effect === "object") {
    return {
      step: "answer",
      response: unknownOutcome(request, `${FORGOTTEN}, and the snap's state cannot be read: ${effect.error}`),
    };
  }
  if (effect === "unknown") {
    return {
      step: "answer",
      response: unknownOutcome(
        request,
        `${FORGOTTEN}, and the snap's state does not show it: outcome unknown`,
      ),
    };
  }
  return {
    step: "answer",
    response: {
      action,
      id,
      success: true,
      message: `${action} of ${snap} is done (snapd no longer lists its change)`,
    },
  };
}

/** Why snapd cannot say which change a started action made. */
export const FORGOTTEN =
  "snapd no longer lists the changes of that time (it forgets finished changes after a day)";

/** The answer to a started action whose outcome cannot be known: an error, and it is not run again. */
function unknownOutcome(request: ActionRequest, reason: string): ActionResponse {
  const { action, id, snap } = request;
  return {
    action,
    id,
    success: false,
    message: `cannot tell whether ${action} reached snapd before the agent restarted (${reason}); ` +
      `it was not run again, so that it cannot happen twice: check the changes of ${snap} and send it again if needed`,
  };
}
