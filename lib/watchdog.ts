/**
 * The watchdog: a snapd change the watchdog has seen in progress for `watchdog.change.timeout` is hung — measured
 * on the boot's clock (time since boot) from the first check that saw it running, never as the wall clock's
 * distance from its spawn time: a device without an RTC boots in 1970 and NTP then moves the clock decades
 * forward, which would make every running change look hung. The first sighting is stored with the boot's id, so a
 * restart of the watchdog (a settings change, a refresh of the snap) keeps counting; a new boot starts afresh.
 *
 * For the oldest hung change it writes `$SNAP_DATA/snap_changes_<id>.json` — every change snapd currently knows, as
 * snapd returns them, pretty-printed, written atomically and fsynced with its directory — and then reboots the
 * device through the power port. Reboot-loop breaker: a change for which a reboot was asked in an *earlier* boot
 * (so the reboot happened and did not cure it) is aborted through snapd instead, once, and logged. A reboot asked
 * in this boot that has not happened is asked again. With `watchdog.reboot=false` a hung change is reported once
 * (the report and one log line) and left alone: nothing rebooted, nothing aborted.
 */
import { join } from "node:path";
import type { ChangeStore } from "./changes/store.ts";
import { describeChange } from "./changes/logger.ts";
import type { Clock } from "./clock.ts";
import { formatDuration } from "./duration.ts";
import { writeFileAtomic } from "./files.ts";
import type { Logger } from "./log.ts";
import type { SnapdPort } from "./snapd/port.ts";
import { READY_STATUSES, type SnapdChange } from "./snapd/types.ts";
import type { Boot } from "./system/boot.ts";
import type { Power } from "./system/power.ts";
import { errorMessage } from "./errors.ts";

/** Options of {@link Watchdog}. */
export interface WatchdogOptions {
  store: ChangeStore;
  snapd: Pick<SnapdPort, "changes" | "abortChange">;
  power: Power;
  log: Logger;
  /** The wall clock, for the times written down. */
  clock: Clock;
  /** This boot: hang time is measured on its clock, and sightings are kept per boot. */
  boot: Boot;
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
  | { kind: "aborted"; changeId: string }
  /** Hung and already reported (watchdog.reboot=false): left alone. */
  | { kind: "hung"; changeId: string };

/** The report file of a change. */
export function reportPath(dir: string, changeId: string): string {
  return join(dir, `snap_changes_${changeId}.json`);
}

/** The hung-change watchdog. */
export class Watchdog {
  /** Changes in progress, by id: the time since boot of the first check that saw each (this boot's, stored). */
  readonly #running: Map<string, number>;

  constructor(private readonly options: WatchdogOptions) {
    this.#running = options.store.watched(options.boot.id);
  }

  /** True when `change` is in progress and has been seen so for at least the timeout. */
  isHung(change: SnapdChange): boolean {
    const since = this.#running.get(change.id);
    return since !== undefined && this.options.boot.uptimeMs() - since >= this.options.timeoutMs;
  }

  /** Notes which changes are running now (and when each was first seen so); forgets the others. */
  #observe(changes: SnapdChange[]): void {
    const { boot, store, log, timeoutMs } = this.options;
    const now = boot.uptimeMs();
    const running = new Set<string>();
    for (const change of changes) {
      if (change.ready || READY_STATUSES.has(change.status)) continue;
      running.add(change.id);
      if (this.#running.has(change.id)) continue;
      this.#running.set(change.id, now);
      store.watch(change.id, boot.id, now);
      log.debug(`change ${change.id} is in progress: hung if still so after ${formatDuration(timeoutMs)}`);
    }
    const gone = [...this.#running.keys()].filter((id) => !running.has(id));
    for (const id of gone) this.#running.delete(id);
    if (gone.length > 0) store.unwatch(gone, boot.id);
  }

  /** Looks at snapd's changes and acts on the oldest hung one. */
  async check(): Promise<WatchdogVerdict> {
    const { snapd, store, boot } = this.options;
    const changes = await snapd.changes({ select: "all" });
    this.#observe(changes);
    const hung = changes.filter((change) => this.isHung(change))
      .sort((a, b) => this.#running.get(a.id)! - this.#running.get(b.id)! || Number(a.id) - Number(b.id));
    let reported: string | undefined;
    for (const change of hung) {
      if (store.reboot(change.id, boot.id) === "happened") {
        if (store.wasAborted(change.id)) continue;
        return await this.#abort(change);
      }
      if (this.options.reboot) return await this.#reboot(change, changes);
      if (!store.wasReported(change.id)) return await this.#report(change, changes);
      reported ??= change.id;
    }
    return reported ? { kind: "hung", changeId: reported } : { kind: "healthy" };
  }

  async #writeReport(change: SnapdChange, changes: SnapdChange[]): Promise<string> {
    const report = reportPath(this.options.reportDir, change.id);
    await writeFileAtomic(report, JSON.stringify(changes, null, 2) + "\n");
    return report;
  }

  async #reboot(change: SnapdChange, changes: SnapdChange[]): Promise<WatchdogVerdict> {
    const { store, log, clock, power, boot } = this.options;
    const again = store.reboot(change.id, boot.id) === "asked";
    const report = await this.#writeReport(change, changes);
    store.recordReboot(change.id, clock.now(), boot.id);
    log.error(
      `hung ${describeChange(change)}; report written to ${report}; ${
        again ? "the reboot asked earlier has not happened: asking again" : "rebooting the device"
      }`,
    );
    await power.reboot(`snap change ${change.id} hung`);
    return { kind: "rebooted", changeId: change.id, report };
  }

  async #report(change: SnapdChange, changes: SnapdChange[]): Promise<WatchdogVerdict> {
    const { store, log, clock } = this.options;
    const report = await this.#writeReport(change, changes);
    store.recordReport(change.id, clock.now());
    log.error(
      `hung ${describeChange(change)}; report written to ${report}; not rebooting (watchdog.reboot=false)`,
    );
    return { kind: "reported", changeId: change.id, report };
  }

  async #abort(change: SnapdChange): Promise<WatchdogVerdict> {
    const { snapd, store, log, clock } = this.options;
    log.error(
      `hung ${describeChange(change)} already caused a reboot: aborting it instead of rebooting again`,
    );
    try {
      await snapd.abortChange(change.id);
      store.recordAbort(change.id, clock.now());
      log.warn(`change ${change.id} aborted`);
    } catch (error) {
      log.error(`aborting change ${change.id} failed: ${errorMessage(error)}`);
    }
    return { kind: "aborted", changeId: change.id };
  }
}
