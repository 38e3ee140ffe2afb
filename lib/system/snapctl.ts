/** Runs `snapctl`, the snap's own command for its configuration and services (found on PATH inside a snap). */

/** What a `snapctl` run printed and whether it succeeded. */
export interface SnapctlResult {
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs `snapctl ARGS…`; never throws for a non-zero exit (look at `success`). */
export async function runSnapctl(args: string[]): Promise<SnapctlResult> {
  const output = await new Deno.Command("snapctl", { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return { success: output.success, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}
