/**
 * The watchdog daemon (`agent watchdog`, the snap's second daemon): the change logger and the hung-change
 * watchdog, each on its own period. It needs no enrollment and shares nothing with the agent daemon but snapd,
 * so it keeps working when the agent is wedged.
 */
import { join } from "node:path";
import { ChangeLogger } from "./changes/logger.ts";
import { writeFileAtomic } from "./files.ts";
import { ChangeStore } from "./changes/store.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { AgentConfig } from "./config.ts";
import { FailureLog } from "./failure_log.ts";
import type { Logger } from "./log.ts";
import { type AgentPaths, expandVariables } from "./paths.ts";
import { Periodic } from "./periodic.ts";
import { SnapdClient } from "./snapd/client.ts";
import { type Power, systemdPower } from "./system/power.ts";
import { Watchdog } from "./watchdog.ts";

/** What the daemon is built from. */
export interface WatchdogDaemonOptions {
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  env: Record<string, string | undefined>;
  /** @default systemClock */
  clock?: Clock;
  /** @default systemctl reboot */
  power?: Power;
}

/** The status file of the watchdog daemon. */
export function watchdogStatusPath(paths: Pick<AgentPaths, "dataDir">): string {
  return join(paths.dataDir, "watchdog-status.json");
}

/** Where the change database is: `snaplogger.database.location` with variables expanded. */
export function changeDatabasePath(
  config: AgentConfig,
  paths: AgentPaths,
  env: Record<string, string | undefined>,
): string {
  return expandVariables(config["snaplogger.database.location"], {
    ...env,
    SNAP_DATA: env.SNAP_DATA || paths.dataDir,
  });
}

/** Runs until `signal` aborts. */
export async function runWatchdogDaemon(options: WatchdogDaemonOptions, signal: AbortSignal): Promise<void> {
  const { config, paths, log, env } = options;
  const clock = options.clock ?? systemClock;
  const snapd = new SnapdClient({ socketPath: config["snapd.socket"], timeoutMs: config["snapd.timeout"] });
  const store = await ChangeStore.open(changeDatabasePath(config, paths, env), log.child("store"));
  const changeLog = log.child("snaplogger", config["snaplogger.log.level"]);
  const logger = new ChangeLogger({
    store,
    snapd,
    log: changeLog,
    clock,
    keep: config["snaplogger.maximum.changes.keep"],
    logStartup: config["snaplogger.log.changes.startup"],
  });
  const watchdog = new Watchdog({
    store,
    snapd,
    power: options.power ?? systemdPower,
    log: log.child("watchdog"),
    clock,
    reportDir: paths.dataDir,
    timeoutMs: config["watchdog.change.timeout"],
    reboot: config["watchdog.reboot"],
  });
  log.info(`watchdog started`, {
    database: store.path,
    timeout: config["watchdog.change.timeout"],
    reboot: config["watchdog.reboot"],
  });
  const loggerFailures = new FailureLog(changeLog, "reading snapd's changes");
  const watchdogFailures = new FailureLog(log.child("watchdog"), "checking for hung changes");
  let started = false;
  const logging = new Periodic(config["snaplogger.duration.between.checks"], async () => {
    try {
      await (started ? logger.check() : logger.startup());
      started = true;
      loggerFailures.succeeded();
    } catch (error) {
      loggerFailures.failed((error as Error).message);
    }
  }, clock);
  let last: { at: string; verdict: string; changeId?: string } | undefined;
  const writeStatus = (state: "running" | "stopped") =>
    writeFileAtomic(
      watchdogStatusPath(paths),
      JSON.stringify(
        { state, pid: Deno.pid, updatedAt: new Date(clock.now()).toISOString(), lastCheck: last },
        null,
        2,
      ) +
        "\n",
      { mode: 0o644 },
    ).catch((error) => log.debug(`status file not written: ${(error as Error).message}`));
  const checking = new Periodic(config["watchdog.check.interval"], async () => {
    try {
      const verdict = await watchdog.check();
      last = {
        at: new Date(clock.now()).toISOString(),
        verdict: verdict.kind,
        changeId: verdict.kind === "healthy" ? undefined : verdict.changeId,
      };
      watchdogFailures.succeeded();
    } catch (error) {
      last = {
        at: new Date(clock.now()).toISOString(),
        verdict: `check failed: ${(error as Error).message}`,
      };
      watchdogFailures.failed((error as Error).message);
    }
    await writeStatus("running");
  }, clock);
  logging.restart();
  checking.restart();
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  logging.stop();
  checking.stop();
  await writeStatus("stopped");
  store.close();
  snapd.close();
}
