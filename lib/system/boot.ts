/**
 * This boot, as a port: its id (`/proc/sys/kernel/random/boot_id`, new at every boot) and the time since it began
 * (CLOCK_BOOTTIME, which no change of the wall clock moves). Together they let a measure survive a restart of the
 * process within one boot — and start afresh after a reboot.
 */

import { runCommand } from "../adapters/command.ts";

/** The current boot. */
export interface Boot {
  /** The kernel's id of this boot. */
  readonly id: string;
  /** Milliseconds since the boot began. */
  uptimeMs(): number;
}

/**
 * Reads this boot from `/proc` (through `cat`: Deno reads `/proc` only with all permissions). The time since boot
 * is read once, then advanced by the process's monotonic clock.
 */
export async function readBoot(): Promise<Boot> {
  const output = await runCommand("cat", ["/proc/sys/kernel/random/boot_id", "/proc/uptime"]);
  const [id, uptime] = output.stdout.split("\n");
  const seconds = Number(uptime?.split(" ")[0]);
  if (!output.success || !/^[0-9a-f-]{36}$/.test(id ?? "") || !Number.isFinite(seconds)) {
    throw new Error(`cannot read this boot's id and uptime from /proc: ${output.stderr.trim()}`);
  }
  const base = seconds * 1000 - performance.now();
  return { id, uptimeMs: () => base + performance.now() };
}
