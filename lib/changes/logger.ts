/**
 * The snap change logger: every `snaplogger.duration.between.checks` it reads all of snapd's changes, stores them,
 * and logs each new change and each status transition once, in one readable line; at start it logs the changes
 * less than 24 h old (`snaplogger.log.changes.startup`). Its log level (`snaplogger.log.level`) is its own:
 * below info it is silent, and storing goes on.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { SnapdPort } from "../snapd/port.ts";
import type { SnapdChange } from "../snapd/types.ts";
import type { ChangeStore } from "./store.ts";

/** Options of {@link ChangeLogger}. */
export interface ChangeLoggerOptions {
  store: ChangeStore;
  snapd: Pick<SnapdPort, "changes">;
  /** The logger's own logger (with `snaplogger.log.level`). */
  log: Logger;
  clock: Clock;
  /** `snaplogger.maximum.changes.keep`. */
  keep: number;
  /** `snaplogger.log.changes.startup`. */
  logStartup: boolean;
}

const DAY_MS = 24 * 3600 * 1000;

/** One readable line about a change. */
export function describeChange(change: SnapdChange): string {
  const times = [
    `spawned ${change["spawn-time"]}`,
    change["ready-time"] ? `ready ${change["ready-time"]}` : undefined,
  ]
    .filter(Boolean).join(", ");
  const error = change.err ? `; error: ${change.err.replace(/\s*\n\s*/g, " | ")}` : "";
  return `change ${change.id} ${change.kind} "${change.summary}" ${change.status} (${times})${error}`;
}

/** The change logger. */
export class ChangeLogger {
  constructor(private readonly options: ChangeLoggerOptions) {}

  /** The first look at start: stores everything and logs the last day's changes when asked to. */
  async startup(): Promise<SnapdChange[]> {
    const { clock, log, logStartup, store } = this.options;
    const changes = await this.check({ quiet: true }); // the backlog is summarised below, not logged as new
    if (logStartup) {
      const recent = store.spawnedSince(clock.now() - DAY_MS);
      log.info(`${recent.length} change(s) in the last 24 h`);
      for (const change of recent) log.info(`known ${describeChange(change)}`);
    }
    return changes;
  }

  /** Reads snapd's changes, stores them, logs what is new or changed, applies retention; returns the changes. */
  async check(options: { quiet?: boolean } = {}): Promise<SnapdChange[]> {
    const { snapd, store, log, clock, keep } = this.options;
    const changes = await snapd.changes({ select: "all" });
    const now = clock.now();
    for (const change of changes) {
      const outcome = store.upsert(change, now);
      if (options.quiet) continue;
      if (outcome.kind === "new") log.info(`new ${describeChange(change)}`);
      if (outcome.kind === "changed") log.info(`${outcome.previousStatus} -> ${describeChange(change)}`);
    }
    const removed = store.retain(keep);
    if (removed > 0) log.debug(`retention: ${removed} old change(s) removed, ${store.count()} kept`);
    return changes;
  }
}
