/**
 * `agent status`: what the daemons say about themselves (their status files, rewritten when something visible
 * changes and at least once a minute) and the change store's size, as one screen for a human or as JSON.
 */
import type { AgentConfig } from "./settings.ts";
import { readTextIfExists } from "./files.ts";
import type { AgentStatus } from "./nats/api.ts";
import { type AgentPaths, agentStatusPath, watchdogStatusPath } from "./paths.ts";
import { changeDatabasePath } from "./watchdog_daemon.ts";

/** A status file older than this (while it says "running") means the daemon is not running. */
export const STALE_AFTER_MS = 180_000;

/** The agent daemon's status file. */
export type AgentStatusFile = AgentStatus & { state: "running" | "stopped"; pid: number; updatedAt: string };

/** The watchdog daemon's status file. */
export interface WatchdogStatusFile {
  state: "running" | "stopped";
  pid: number;
  updatedAt: string;
  lastCheck?: { at: string; verdict: string; changeId?: string };
}

/** Everything `status` shows. */
export interface StatusReport {
  agent?: AgentStatusFile;
  watchdog?: WatchdogStatusFile;
  changeStore: { path: string; bytes?: number };
  paths: { data: string; common: string };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  const text = await readTextIfExists(path).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Gathers the report. */
export async function readStatus(
  config: AgentConfig,
  paths: AgentPaths,
  env: Record<string, string | undefined>,
): Promise<StatusReport> {
  const database = changeDatabasePath(config, paths, env);
  let bytes: number | undefined;
  for (const suffix of ["", "-wal"]) {
    const size = await Deno.stat(database + suffix).then((s) => s.size, () => undefined);
    if (size !== undefined) bytes = (bytes ?? 0) + size;
  }
  return {
    agent: await readJson<AgentStatusFile>(agentStatusPath(paths)),
    watchdog: await readJson<WatchdogStatusFile>(watchdogStatusPath(paths)),
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

function daemonState(
  file: { state: string; pid: number; updatedAt: string } | undefined,
  now: number,
): string {
  if (!file) return "not running (no status file)";
  if (file.state === "stopped") return `stopped (${ago(file.updatedAt, now)})`;
  if (now - Date.parse(file.updatedAt) > STALE_AFTER_MS) {
    return `not running? its status is stale: ${ago(file.updatedAt, now)}`;
  }
  return `running (pid ${file.pid})`;
}

function size(bytes: number | undefined): string {
  if (bytes === undefined) return "no database yet";
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The human screen. */
export function formatStatus(report: StatusReport, now: number): string {
  const agent = report.agent;
  const running = agent?.state === "running" && now - Date.parse(agent.updatedAt) <= STALE_AFTER_MS;
  const rows: [string, string][] = [["Agent daemon", daemonState(agent, now)]];
  if (agent) {
    rows.push(["Version", agent.version]);
    rows.push([
      "Enrollment",
      agent.enrolled
        ? `enrolled as ${agent.deviceId} (organisation ${agent.organizationId})`
        : `not enrolled${
          agent.enrollmentError ? `: ${agent.enrollmentError}` : " (waiting for the identity URL?)"
        }`,
    ]);
    if (agent.broker) {
      const { host, port, connected, connectedSince, lastError } = agent.broker;
      rows.push([
        "Broker",
        `${host}:${port} — ${
          connected && running
            ? `connected since ${ago(connectedSince, now)}`
            : `not connected${lastError ? `: ${lastError}` : ""}`
        }`,
      ]);
    }
    rows.push(["Last health", ago(agent.lastHealthAt, now)]);
    rows.push(["Outbox", `${agent.outboxDepth} response(s) waiting for the broker`]);
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
        : nats.connected
        ? "connected"
        : `not connected${nats.lastError ? `: ${nats.lastError}` : ""}`,
    ]);
  }
  const watchdog = report.watchdog;
  const check = watchdog?.lastCheck;
  rows.push([
    "Watchdog",
    `${daemonState(watchdog, now)}${
      check
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
