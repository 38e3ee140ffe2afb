/** Runs `snapctl`, the snap's own command for its configuration and services (found on PATH inside a snap). */
import { type CommandResult, runCommand } from "./command.ts";

/** What a `snapctl` run printed (trimmed) and whether it succeeded. */
export type SnapctlResult = CommandResult;

/** Runs `snapctl ARGS…`; never throws for a non-zero exit (look at `success`). The port the rest is handed. */
export type Snapctl = (args: string[]) => Promise<SnapctlResult>;

/** The real {@link Snapctl}. */
export async function runSnapctl(args: string[]): Promise<SnapctlResult> {
  const output = await runCommand("snapctl", args);
  return { success: output.success, stdout: output.stdout.trim(), stderr: output.stderr.trim() };
}
