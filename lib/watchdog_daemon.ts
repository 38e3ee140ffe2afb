/**
 * The watchdog daemon (`agent watchdog`, the snap's second daemon): the change logger and the hung-change
 * watchdog, each on its own period. It needs no enrollment and shares nothing with the agent daemon but snapd,
 * so it keeps working when the agent is wedged. Its ports (snapd, the change store, power, the clock) come in
 * from `main.ts`.
 */
import { ChangeLogger } from "./changes/logger.ts";
import type { ChangeStore } from "./changes/store.ts";
import type { Clock } from "./clock.ts";
import type { AgentConfig } from "./settings.ts";
import type { Logger } from "./log.ts";
import { type AgentPaths, watchdogStatusPath } from "./paths.ts";
import { Liveness } from "./liveness.ts";
import { Periodic } from "./periodic.ts";
import { StatusFile } from "./status_file.ts";
import type { SnapdPort } from "./snapd/port.ts";
import type { WatchdogStatusFile } from "./status_report.ts";
import type { Boot } from "./system/boot.ts";
import type { ProcessIdentity } from "./system/process.ts";
import type { Notifier } from "./system/sd_notify.ts";
import type { Power } from "./system/power.ts";
import { Watchdog } from "./watchdog.ts";
import { errorMessage } from "./errors.ts";

/** What the daemon is built from. */
export interface WatchdogDaemonOptions {
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  snapd: Pick<SnapdPort, "changes" | "abortChange">;
  /** The change store, open. */
  store: ChangeStore;
  power: Power;
  clock: Clock;
  boot: Boot;
  /** This process, as the status file names it. */
  identity: ProcessIdentity;
  /** systemd's notification socket, when systemd started the daemon. */
  notifier?: Notifier;
}

/** Runs until `signal` aborts. */
export async function runWatchdogDaemon(options: WatchdogDaemonOptions, signal: AbortSignal): Promise<void> {
  const { config, paths, log, snapd, store, clock } = options;
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
    power: options.power,
    log: log.child("watchdog"),
    clock,
    boot: options.boot,
    reportDir: paths.dataDir,
    timeoutMs: config["watchdog.change.timeout"],
    reboot: config["watchdog.reboot"],
  });
  log.info(`watchdog started`, {
    database: store.path,
    timeout: config["watchdog.change.timeout"],
    reboot: config["watchdog.reboot"],
  });
  let started = false;
  const logging = new Periodic(async () => {
    await (started ? logger.check() : logger.startup());
    started = true;
  }, {
    name: "reading snapd's changes",
    intervalMs: config["snaplogger.duration.between.checks"],
    clock,
    log: changeLog,
  });
  let last: { at: string; verdict: string; changeId?: string } | undefined;
  let onLook = () => {};
  const statusFile = new StatusFile<WatchdogStatusFile>({
    path: watchdogStatusPath(paths),
    visible: ({ state, pid, lastCheck }) => ({
      state,
      pid,
      verdict: lastCheck?.verdict,
      change: lastCheck?.changeId,
    }),
    clock,
    log,
  });
  const writeStatus = (state: "running" | "stopped") =>
    statusFile.update(
      { state, ...options.identity, updatedAt: new Date(clock.now()).toISOString(), lastCheck: last },
      state === "stopped",
    );
  const checking = new Periodic(async () => {
    const at = () => new Date(clock.now()).toISOString();
    try {
      const verdict = await watchdog.check();
      last = {
        at: at(),
        verdict: verdict.kind,
        changeId: verdict.kind === "healthy" ? undefined : verdict.changeId,
      };
    } catch (error) {
      last = { at: at(), verdict: `check failed: ${errorMessage(error)}` };
      throw error;
    } finally {
      onLook();
      await writeStatus("running");
    }
  }, {
    name: "checking for hung changes",
    intervalMs: config["watchdog.check.interval"],
    clock,
    log: log.child("watchdog"),
  });
  logging.restart();
  checking.restart();
  // proof of life: the change store answers, and the watchdog looked at snapd's changes lately
  let lastLook = clock.monotonic();
  const lookedWithin = 2 * config["watchdog.check.interval"] + config["snapd.timeout"] + 10_000;
  const liveness = options.notifier && new Liveness({
    notifier: options.notifier,
    clock,
    log: log.child("systemd"),
    checks: {
      "the change store": () => (store.count(), undefined),
      "the hung-change check": () => {
        const since = clock.monotonic() - lastLook;
        return since > lookedWithin
          ? `no look at snapd's changes for ${Math.round(since / 1000)} s`
          : undefined;
      },
    },
  });
  onLook = () => (lastLook = clock.monotonic());
  await liveness?.ready();
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  logging.stop();
  checking.stop();
  await liveness?.stop();
  await writeStatus("stopped");
}
