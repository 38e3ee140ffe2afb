/**
 * The watchdog: a snapd change the watchdog has seen in progress for `watchdog.change.timeout` is hung — measured
 * on the monotonic clock from the first check that saw it running, never as the wall clock's distance from its
 * spawn time: a device without an RTC boots in 1970 and NTP then moves the clock decades forward, which would
 * make every running change look hung. (After the watchdog restarts it measures afresh: it may act later, never
 * sooner.) For the
 * oldest hung change it writes `$SNAP_DATA/snap_changes_<id>.json` — every change snapd currently knows, as snapd
 * returns them, pretty-printed, written atomically and fsynced with its directory — and then reboots the device
 * through the power port (`watchdog.reboot=false`: report and log only). Reboot-loop breaker: a change that
 * already caused a reboot (remembered in the change store) is aborted through snapd instead, once, and logged.
 */
import { join } from "node:path";
import type { ChangeStore } from "./changes/store.ts";
import { describeChange } from "./changes/logger.ts";
import type { Clock } from "./clock.ts";
import { writeFileAtomic } from "./files.ts";
import type { Logger } from "./log.ts";
import type { SnapdPort } from "./snapd/port.ts";
import { READY_STATUSES, type SnapdChange } from "./snapd/types.ts";
import type { Power } from "./system/power.ts";

/** Options of {@link Watchdog}. */
export interface WatchdogOptions {
  store: ChangeStore;
  snapd: Pick<SnapdPort, "changes" | "abortChange">;
  power: Power;
  log: Logger;
  clock: Clock;
  /** Where reports go (`$SNAP_DATA`). */
  reportDir: string;
  /** `watchdog.change.timeout`, ms. */
  timeoutMs: number;
  /** `watchdog.reboot`. */
  reboot: boolean;
}

/** What one check did. */
export type WatchdogVerdict =
  | { kind: "healthy" }
  | { kind: "rebooted" | "reported"; changeId: string; report: string }
  | { kind: "aborted"; changeId: string };

/** The report file of a change. */
export function reportPath(dir: string, changeId: string): string {
  return join(dir, `snap_changes_${changeId}.json`);
}

/** The hung-change watchdog. */
export class Watchdog {
  /** Changes in progress, by id: the monotonic time of the first check that saw each. */
  readonly #running = new Map<string, number>();

  constructor(private readonly options: WatchdogOptions) {}

  /** True when `change` is in progress and has been seen so for at least the timeout. */
  isHung(change: SnapdChange): boolean {
    const since = this.#running.get(change.id);
    return since !== undefined && this.options.clock.monotonic() - since >= this.options.timeoutMs;
  }

  /** Notes which changes are running now (and when each was first seen so); forgets the others. */
  #observe(changes: SnapdChange[]): void {
    const now = this.options.clock.monotonic();
    const running = new Set<string>();
    for (const change of changes) {
      if (change.ready || READY_STATUSES.has(change.status)) continue;
      running.add(change.id);
      if (!this.#running.has(change.id)) this.#running.set(change.id, now);
    }
    for (const id of this.#running.keys()) if (!running.has(id)) this.#running.delete(id);
  }

  /** Looks at snapd's changes and acts on the oldest hung one. */
  async check(): Promise<WatchdogVerdict> {
    const { snapd, store, log, clock, power, reportDir } = this.options;
    const changes = await snapd.changes({ select: "all" });
    this.#observe(changes);
    const hung = changes.filter((change) => this.isHung(change))
      .sort((a, b) => this.#running.get(a.id)! - this.#running.get(b.id)! || Number(a.id) - Number(b.id));
    for (const change of hung) {
      if (!store.causedReboot(change.id)) {
        const report = reportPath(reportDir, change.id);
        await writeFileAtomic(report, JSON.stringify(changes, null, 2) + "\n");
        store.recordReboot(change.id, clock.now());
        if (!this.options.reboot) {
          log.error(
            `hung ${
              describeChange(change)
            }; report written to ${report}; not rebooting (watchdog.reboot=false)`,
          );
          return { kind: "reported", changeId: change.id, report };
        }
        log.error(`hung ${describeChange(change)}; report written to ${report}; rebooting the device`);
        await power.reboot(`snap change ${change.id} hung`);
        return { kind: "rebooted", changeId: change.id, report };
      }
      if (store.wasAborted(change.id)) continue;
      log.error(
        `hung ${describeChange(change)} already caused a reboot: aborting it instead of rebooting again`,
      );
      try {
        await snapd.abortChange(change.id);
        store.recordAbort(change.id, clock.now());
        log.warn(`change ${change.id} aborted`);
      } catch (error) {
        log.error(`aborting change ${change.id} failed: ${(error as Error).message}`);
      }
      return { kind: "aborted", changeId: change.id };
    }
    return { kind: "healthy" };
  }
}
