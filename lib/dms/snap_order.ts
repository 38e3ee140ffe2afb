/**
 * Per-snap order: the next action on a snap starts only once the change the previous one started is ready. snapd
 * judges a request against the snap's state *before* a running change applies, so a `disable` then an `enable`
 * at once leaves the snap disabled, the enable answered "already enabled".
 *
 * In normal running the wait follows each action that started a change. That wait lives in memory, so across a
 * restart (a kill, a power cut) it would be forgotten and the next action posted while the previous change still
 * runs. So, once the journal is resumed, snapd's changes in progress are read once; the journal tells which of them
 * an earlier action of this agent started and on which snap; and the first action of that snap in this process
 * waits for them first. Changes nobody here started (an operator's `snap refresh`) are not waited for: snapd's
 * conflict answer covers them, as in normal running.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { BackoffOptions } from "../retry.ts";
import { waitForChange } from "../snapd/change_wait.ts";
import type { SnapdPort } from "../snapd/port.ts";
import { errorMessage } from "../errors.ts";
import type { ActionJournal } from "./journal.ts";

/** A change an earlier action started, on one snap. */
export interface EarlierChange {
  /** snapd's change id. */
  change: string;
  /** The action that started it. */
  actionId: string;
}

/** A change that ended in Error after its action was answered (snapd's `err`), with the count so far. */
export interface ChangeFailure {
  count: number;
  changeId: string;
  /** The action's id. */
  id: string;
  snap: string;
  error: string;
}

/** Options of {@link SnapOrder}. */
export interface SnapOrderOptions {
  journal: ActionJournal;
  snapd: Pick<SnapdPort, "change">;
  /** snapd's change ids in progress (`GET /v2/changes?select=in-progress`), retried by the caller's rules. */
  inProgress(): Promise<string[]>;
  clock: Clock;
  /** How long one change holds its snap, in ms; then the next action goes ahead, ready or not. */
  patienceMs: number;
  /** Polling of a running change. @default {initialMs: 100, maxMs: 2000} */
  poll?: BackoffOptions;
  /** Ends every wait (the agent stops). */
  signal: AbortSignal;
  log: Logger;
}

/** The waits that keep each snap's actions in order, in this process and across a restart. */
export class SnapOrder {
  readonly #options: SnapOrderOptions;
  #earlier?: Promise<Map<string, EarlierChange[]>>;
  /** Snaps whose first action of this process was scheduled (behind the wait for their earlier changes). */
  readonly #scheduled = new Set<string>();

  constructor(options: SnapOrderOptions) {
    this.#options = options;
  }

  /** Starts reading what earlier actions left running (once, when the journal is resumed after a start). */
  resume(): void {
    this.#earlier ??= this.#readEarlier();
  }

  /**
   * The wait to queue ahead of the first action on `snap` after {@link resume}: for the changes earlier actions
   * left running. Undefined ever after, and always when nothing was resumed.
   */
  firstWait(snap: string): (() => Promise<void>) | undefined {
    if (!this.#earlier || this.#scheduled.has(snap)) return undefined;
    this.#scheduled.add(snap);
    return async () => {
      for (const { change, actionId } of (await this.#earlier)?.get(snap) ?? []) {
        this.#options.log.info(
          `waiting for change ${change} of action ${actionId}, started before the restart`,
          {
            snap,
          },
        );
        await this.untilReady(change, { id: actionId, snap });
      }
    };
  }

  /** The changes that ended in Error after their action was answered: how many, and the last one. */
  failed: ChangeFailure | undefined;

  /** True when `snap` has no wait for earlier changes still to be queued. */
  settled(snap: string): boolean {
    return !this.#earlier || this.#scheduled.has(snap);
  }

  /**
   * Holds the snap's queue until the change an action started is ready (Done, Error, Undone, Hold), polling with
   * jittered backoff, at most `patienceMs`; then the next action on the snap goes ahead, ready or not.
   */
  async untilReady(changeId: unknown, action: { id: string; snap: string }): Promise<void> {
    if (typeof changeId !== "string") return;
    const { clock, snapd, patienceMs, log } = this.#options;
    const outcome = await waitForChange(snapd, changeId, {
      clock,
      patienceMs,
      poll: this.#options.poll,
      signal: this.#options.signal,
      onReadError: (error) => log.debug(`reading change ${changeId} failed: ${error.message}`),
    });
    if (outcome.kind === "ready" && outcome.change.status === "Error") {
      // answered at snapd's 202 already: this line and status are where the failure shows
      this.failed = {
        count: (this.failed?.count ?? 0) + 1,
        changeId,
        id: action.id,
        snap: action.snap,
        error: outcome.change.err ?? "",
      };
      log.warn(`change ${changeId} of action ${action.id} on ${action.snap} failed: ${this.failed.error}`);
    } else if (outcome.kind === "ready") {
      log.debug(`change ${changeId} of action ${action.id} is ${outcome.change.status}`);
    } else if (outcome.kind === "timed out") {
      log.warn(
        `change ${changeId} of action ${action.id} is still not ready after ${
          Math.round(patienceMs / 1000)
        } s: ` +
          `the next action on ${action.snap} goes ahead`,
      );
    }
  }

  async #readEarlier(): Promise<Map<string, EarlierChange[]>> {
    const bySnap = new Map<string, EarlierChange[]>();
    let running: string[];
    try {
      running = await this.#options.inProgress();
    } catch (error) {
      this.#options.log.warn(
        `snapd's changes in progress cannot be read (${errorMessage(error)}): ` +
          "actions go ahead without waiting for the changes started before the restart",
      );
      return bySnap;
    }
    if (running.length === 0) return bySnap;
    for (const { snap, change, actionId } of this.#options.journal.startedChanges(running)) {
      bySnap.set(snap, [...bySnap.get(snap) ?? [], { change, actionId }]);
    }
    return bySnap;
  }
}
