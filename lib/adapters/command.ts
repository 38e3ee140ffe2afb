/**
 * Every program the agent runs (`snapctl`, `systemctl reboot`, `cat` for `/proc`) goes through here. The child gets
 * the agent's environment minus the dynamic loader's variables (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `LD_AUDIT`, …):
 * Deno refuses to start a child with them under a narrow `--allow-run`, and a program of the device does not
 * need the agent's preloads.
 */

/** What a run printed and whether it succeeded. */
export interface CommandResult {
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs `program` with `args` to its end; never throws for a non-zero exit (look at `success`). */
export async function runCommand(program: string, args: string[]): Promise<CommandResult> {
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("LD_")),
  );
  const output = await new Deno.Command(program, {
    args,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { success: output.success, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/**
 * Reads a file under /proc through `cat`: Deno refuses /proc reads to anything short of `--allow-all`, and
 * `--allow-run=cat` is the narrower grant (it adds nothing that `--allow-read` does not already allow).
 * @throws when it cannot be read
 */
export async function readProcFile(path: string): Promise<string> {
  const output = await runCommand("cat", [path]);
  if (!output.success) throw new Error(`cannot read ${path}: ${output.stderr.trim()}`);
  return output.stdout;
}
