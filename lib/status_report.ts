/**
 * `agent status`: what the daemons say about themselves (their status files, rewritten when something visible
 * changes and at least once a minute), checked against the processes themselves — a status file that says
 * "running" whose process is gone (killed, crashed) reports the daemon as failed at once — the enrollment (read
 * from `.secret` when the agent daemon is not running), and the change store's size, as one screen for a human or
 * as JSON. Like `systemctl is-active`, the exit code is 0 when both daemons run and 3 otherwise.
 */
import { readTextIfExists } from "./files.ts";
import { decodeEnrollment } from "./identity/enrollment.ts";
import type { AgentStatus } from "./agent_status.ts";
import { type AgentPaths, agentStatusPath, watchdogStatusPath } from "./paths.ts";
import type { AgentConfig } from "./settings.ts";
import { isRunning, type ProcessIdentity } from "./system/process.ts";
import { changeDatabasePath } from "./changes/location.ts";
import { errorMessage } from "./errors.ts";

/** A status file not rewritten for this long, while its process runs, means the daemon may be wedged. */
export const STALE_AFTER_MS = 180_000;

/** What every daemon's status file holds. */
export interface DaemonStatusFile extends ProcessIdentity {
  state: "running" | "stopped";
  updatedAt: string;
}

/** The agent daemon's status file. */
export type AgentStatusFile = AgentStatus & DaemonStatusFile;

/** The watchdog daemon's status file. */
export interface WatchdogStatusFile extends DaemonStatusFile {
  lastCheck?: { at: string; verdict: string; changeId?: string };
}

/**
 * A daemon's state: `running` (its process is alive), `stopped` (it stopped cleanly), `failed` (its status file
 * says running but its process is gone: killed or crashed), `not started` (no status file since boot).
 */
export type DaemonState = "running" | "stopped" | "failed" | "not started";

/** One daemon in the report: its state, and what its status file last said. */
export type DaemonReport<F> = Omit<Partial<F>, "state"> & { state: DaemonState; stale?: boolean };

/** The enrollment, from the running agent or from `.secret`. */
export interface EnrollmentReport {
  enrolled: boolean;
  deviceId?: string;
  organizationId?: string;
  /** `agent`: what the running daemon reports; `.secret`: read from the file (the agent is not running). */
  source: "agent" | ".secret";
  /** Why the agent is not enrolled, or why `.secret` is unusable. */
  error?: string;
}

/** Everything `status` shows; the shape is stable: every key is always there. */
export interface StatusReport {
  agent: DaemonReport<AgentStatusFile>;
  watchdog: DaemonReport<WatchdogStatusFile>;
  enrollment: EnrollmentReport;
  changeStore: { path: string; bytes?: number };
  paths: { data: string; common: string };
}

/** Exit code of `agent status`: 0 when both daemons run, 3 otherwise (as `systemctl is-active`). */
export function statusExitCode(report: StatusReport): number {
  return report.agent.state === "running" && report.watchdog.state === "running" ? 0 : 3;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  const text = await readTextIfExists(path).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value as T : undefined;
  } catch {
    return undefined;
  }
}

/** A daemon's report from its status file and its process. */
async function daemonReport<F extends DaemonStatusFile>(
  file: F | undefined,
  now: number,
): Promise<DaemonReport<F>> {
  if (!file) return { state: "not started" } as DaemonReport<F>;
  if (file.state !== "running") return { ...file, state: "stopped" };
  if (!(await isRunning(file))) return { ...file, state: "failed" };
  const stale = now - Date.parse(file.updatedAt) > STALE_AFTER_MS;
  return { ...file, state: "running", ...(stale ? { stale } : {}) };
}

async function enrollmentReport(
  agent: DaemonReport<AgentStatusFile>,
  paths: AgentPaths,
): Promise<EnrollmentReport> {
  if (agent.state === "running" && agent.enrolled !== undefined) {
    return {
      enrolled: agent.enrolled,
      deviceId: agent.deviceId,
      organizationId: agent.organizationId,
      source: "agent",
      error: agent.enrollmentError,
    };
  }
  let text: string | undefined;
  try {
    text = await readTextIfExists(paths.credentials);
  } catch (error) {
    return { enrolled: false, source: ".secret", error: `cannot read it: ${errorMessage(error)}` };
  }
  if (text === undefined) return { enrolled: false, source: ".secret" };
  try {
    const enrollment = decodeEnrollment(JSON.parse(text));
    return {
      enrolled: true,
      deviceId: enrollment.id,
      organizationId: enrollment.organization.id,
      source: ".secret",
    };
  } catch (error) {
    return { enrolled: false, source: ".secret", error: `it is unusable: ${errorMessage(error)}` };
  }
}

/** Gathers the report. */
export async function readStatus(
  config: AgentConfig,
  paths: AgentPaths,
  env: Record<string, string | undefined>,
  now = Date.now(),
): Promise<StatusReport> {
  const database = changeDatabasePath(config, paths, env);
  let bytes: number | undefined;
  for (const suffix of ["", "-wal"]) {
    const size = await Deno.stat(database + suffix).then((s) => s.size, () => undefined);
    if (size !== undefined) bytes = (bytes ?? 0) + size;
  }
  const agent = await daemonReport(await readJson<AgentStatusFile>(agentStatusPath(paths)), now);
  return {
    agent,
    watchdog: await daemonReport(await readJson<WatchdogStatusFile>(watchdogStatusPath(paths)), now),
    enrollment: await enrollmentReport(agent, paths),
    changeStore: { path: database, bytes },
    paths: { data: paths.dataDir, common: paths.commonDir },
  };
}

/** "3 s ago", "12 min ago", "2 h ago". */
export function ago(iso: string | undefined, now: number): string {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const text = seconds < 120
    ? `${seconds} s`
    : seconds < 7200
    ? `${Math.round(seconds / 60)} min`
    : `${Math.round(seconds / 3600)} h`;
  return `${iso} (${text} ago)`;
}

function daemonLine(daemon: DaemonReport<DaemonStatusFile>, now: number): string {
  switch (daemon.state) {
    case "not started":
      return "not running (no status file since boot)";
    case "stopped":
      return `stopped (${ago(daemon.updatedAt, now)})`;
    case "failed":
      return `not running: its process (pid ${daemon.pid}) is gone — killed or crashed; last status ${
        ago(daemon.updatedAt, now)
      }`;
    case "running":
      return `running (pid ${daemon.pid})${
        daemon.stale ? `, but its status is ${ago(daemon.updatedAt, now)}: wedged?` : ""
      }`;
  }
}

function enrollmentLine(enrollment: EnrollmentReport): string {
  const from = enrollment.source === ".secret" ? " — from .secret (the agent is not running)" : "";
  if (enrollment.enrolled) {
    return `enrolled as ${enrollment.deviceId} (organisation ${enrollment.organizationId})${from}`;
  }
  if (enrollment.source === ".secret") {
    return enrollment.error ? `.secret ${enrollment.error}` : "not enrolled (no .secret)";
  }
  return `not enrolled${enrollment.error ? `: ${enrollment.error}` : " (waiting for the identity URL?)"}`;
}

function size(bytes: number | undefined): string {
  if (bytes === undefined) return "no database yet";
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The human screen. */
export function formatStatus(report: StatusReport, now: number): string {
  const { agent, watchdog } = report;
  const running = agent.state === "running";
  const rows: [string, string][] = [["Agent daemon", daemonLine(agent, now)]];
  if (agent.version) rows.push(["Version", agent.version]);
  if (running && agent.phase) rows.push(["Phase", agent.phase]);
  rows.push(["Enrollment", enrollmentLine(report.enrollment)]);
  if (running) {
    if (agent.broker) {
      const { host, port, connected, connectedSince, lastError } = agent.broker;
      rows.push([
        "Broker",
        `${host}:${port} — ${
          connected
            ? `connected since ${ago(connectedSince, now)}`
            : `not connected${lastError ? `: ${lastError}` : ""}`
        }`,
      ]);
    }
    rows.push(["Last health", ago(agent.lastHealthAt, now)]);
    rows.push([
      "Outbox",
      `${agent.outboxDepth} response(s) waiting for the broker` +
      (agent.setAsideReplies ? `; ${agent.setAsideReplies} set aside (the broker kept refusing them)` : ""),
    ]);
    const failed = agent.failedChanges;
    if (failed) {
      rows.push([
        "Failed changes",
        `${failed.count} after their reply; last: change ${failed.last.changeId} of action ${failed.last.actionId} ` +
        `on ${failed.last.snap}: ${failed.last.error}`,
      ]);
    }
    if (agent.memory) {
      const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
      const { rss, heapUsed, heapTotal } = agent.memory;
      rows.push([
        "Memory",
        `${mib(rss)} resident; JavaScript heap ${mib(heapUsed)} used of ${mib(heapTotal)}`,
      ]);
    }
    const nats = agent.nats;
    rows.push([
      "NATS",
      !nats?.enabled
        ? "disabled"
        : `${nats.connected ? "connected" : `not connected${nats.lastError ? `: ${nats.lastError}` : ""}`}${
          nats.writesRefused ? `; every ${nats.writesRefused}` : ""
        }`,
    ]);
  }
  const check = watchdog.lastCheck;
  rows.push([
    "Watchdog",
    `${daemonLine(watchdog, now)}${
      check && watchdog.state === "running"
        ? `; last check ${ago(check.at, now)}: ${check.verdict}${
          check.changeId ? ` (change ${check.changeId})` : ""
        }`
        : ""
    }`,
  ]);
  rows.push(["Change store", `${report.changeStore.path} — ${size(report.changeStore.bytes)}`]);
  rows.push(["Data", `${report.paths.data} (device-data.bin in ${report.paths.common})`]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}
