/**
 * Metrics in InfluxDB line protocol, as the Go agent published them on `metrics/<org>` (no timestamp, no
 * newline, floats with six decimals):
 * - `memory,device=<id> total=<bytes>,used=<bytes>,usedpc=<percent>` from `/proc/meminfo`
 *   (used = MemTotal − MemFree − Buffers − Cached − SReclaimable);
 * - `cpu,device=<id> user=<s>,system=<s>,total=<s>` from the aggregate line of `/proc/stat`, seconds since boot
 *   (total = user+nice+system+idle+iowait+irq+softirq+steal; guest time is already inside user).
 */
import { readProcFile } from "../adapters/command.ts";
import { asError } from "../errors.ts";

/** Ticks per second of `/proc/stat` (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

function escapeTag(value: string): string {
  return value.replace(/[,= ]/g, (c) => `\\${c}`);
}

function float(value: number): string {
  return value.toFixed(6);
}

/** The memory line from `/proc/meminfo` text. @throws {Error} when MemTotal is missing. */
export function memoryLine(deviceId: string, meminfo: string): string {
  const kb = new Map<string, number>();
  for (const line of meminfo.split("\n")) {
    const match = /^(\w+\(?\w*\)?):\s+(\d+)/.exec(line);
    if (match) kb.set(match[1], Number(match[2]));
  }
  const total = (kb.get("MemTotal") ?? NaN) * 1024;
  if (!Number.isFinite(total) || total <= 0) throw new Error("/proc/meminfo has no MemTotal");
  const field = (name: string) => (kb.get(name) ?? 0) * 1024;
  const cached = field("Cached") + field("SReclaimable");
  const used = total - field("MemFree") - field("Buffers") - cached;
  return `memory,device=${escapeTag(deviceId)} total=${total},used=${used},usedpc=${
    float((used / total) * 100)
  }`;
}

/** The cpu line from `/proc/stat` text. @throws {Error} when the aggregate line is missing. */
export function cpuLine(deviceId: string, stat: string): string {
  const line = stat.split("\n").find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error("/proc/stat has no aggregate cpu line");
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9)
    .map((v) => Number(v ?? 0) / CLOCK_TICKS);
  const total = user + nice + system + idle + (iowait || 0) + (irq || 0) + (softirq || 0) + (steal || 0);
  return `cpu,device=${escapeTag(deviceId)} user=${float(user)},system=${float(system)},total=${
    float(total)
  }`;
}

/** Reads a file; injectable for tests. */
export type ReadText = (path: string) => Promise<string>;

/** The metric lines that could be read; a source that fails is skipped (and reported through `onError`). */
export async function readMetrics(
  deviceId: string,
  onError: (error: Error) => void,
  readText: ReadText = readProcFile,
): Promise<string[]> {
  const lines: string[] = [];
  for (const [path, build] of [["/proc/meminfo", memoryLine], ["/proc/stat", cpuLine]] as const) {
    try {
      lines.push(build(deviceId, await readText(path)));
    } catch (error) {
      onError(asError(error));
    }
  }
  return lines;
}
