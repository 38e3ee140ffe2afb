/**
 * The watchdog: a snapd change that is not ready `watchdog.change.timeout` after its spawn time is hung. For the
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
  constructor(private readonly options: WatchdogOptions) {}

  /** True when `change` is not ready and older than the timeout. */
  isHung(change: SnapdChange): boolean {
    if (change.ready || READY_STATUSES.has(change.status)) return false;
    const spawned = Date.parse(change["spawn-time"]);
    return !Number.isNaN(spawned) && this.options.clock.now() - spawned >= this.options.timeoutMs;
  }

  /** Looks at snapd's changes and acts on the oldest hung one. */
  async check(): Promise<WatchdogVerdict> {
    const { snapd, store, log, clock, power, reportDir } = this.options;
    const changes = await snapd.changes({ select: "all" });
    const hung = changes.filter((change) => this.isHung(change))
      .sort((a, b) => Date.parse(a["spawn-time"]) - Date.parse(b["spawn-time"]));
    for (const change of hung) {
      if (!store.causedReboot(change.id)) {
        const report = reportPath(reportDir, change.id);
        await writeFileAtomic(report, JSON.stringify(changes, null, 2) + "\n", { mode: 0o644 });
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
