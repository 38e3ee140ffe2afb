/**
 * A process's identity: its pid and its start time (clock ticks after boot, field 22 of `/proc/<pid>/stat`). A pid
 * alone may have been given to another process since; the pair names one process for the lifetime of the boot.
 * `/proc` is read through `cat` (Deno reads it only with all permissions).
 */
import { runCommand } from "../adapters/command.ts";

/** One process. */
export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks after boot; absent when it could not be read. */
  startTicks?: number;
}

/** The start time of process `pid`, or undefined when there is no such process (or /proc cannot be read). */
export async function startTicksOf(pid: number): Promise<number | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const output = await runCommand("cat", [`/proc/${pid}/stat`]).catch(() => undefined);
  if (!output?.success) return undefined;
  const text = output.stdout;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; the fields after the last ")" start at 3
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[22 - 3]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

/** This process. */
export async function ownIdentity(): Promise<ProcessIdentity> {
  return { pid: Deno.pid, startTicks: await startTicksOf(Deno.pid) };
}

/** True when `identity` is a running process: its pid exists and started when it says (if it says). */
export async function isRunning(identity: ProcessIdentity): Promise<boolean> {
  const ticks = await startTicksOf(identity.pid);
  if (ticks === undefined) return false;
  return identity.startTicks === undefined || identity.startTicks === ticks;
}
