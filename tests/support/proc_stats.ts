/** What /proc says about a process: memory, CPU time and bytes written to storage (for the benchmarks). */

/** Memory of a process, in bytes. */
export interface MemoryStats {
  /** Resident set size. */
  rss: number;
  /** Its anonymous part: the heap and other private memory, not mapped files such as the executable. */
  anon: number;
}

/** VmRSS and RssAnon of `pid`. */
export function memoryOf(pid: number): MemoryStats {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), anon: kib("RssAnon") };
}

/** CPU time `pid` has used (user + system), in seconds. */
export function cpuSecondsOf(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Bytes `pid` caused to be written to storage (`write_bytes` of /proc/<pid>/io). */
export function bytesWrittenBy(pid: number): number {
  const io = Deno.readTextFileSync(`/proc/${pid}/io`);
  return Number(/^write_bytes:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
}

/** The p-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Megabytes, one decimal. */
export function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
