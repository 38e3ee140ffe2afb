/**
 * The real agent as a child process, started exactly as `deno task start` starts it (same permission flags),
 * so tests exercise the permissions, signals and exit codes of the shipped command line.
 */
import { fileURLToPath } from "node:url";
import manifest from "../../deno.json" with { type: "json" };
import { Child } from "./child.ts";
import { within } from "./wait.ts";

/** The project root. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `deno run <flags> main.ts` of the start task, minus its trailing `run` command. */
function startCommand(): string[] {
  const words = manifest.tasks.start.split(/\s+/);
  const main = words.indexOf("main.ts");
  return words.slice(1, main + 1);
}

/**
 * Starts the agent with `args` (e.g. `["run"]`, `["configure", "--url", u]`) and `env`; `echo` prefixes output;
 * `denoFlags` go to `deno run` (e.g. `--inspect` for heap snapshots).
 */
export function startAgent(
  args: string[],
  env: Record<string, string>,
  echo?: string,
  denoFlags: string[] = [],
): Child {
  const [command, ...rest] = agentArgv(args, denoFlags);
  return Child.spawn(command, rest, { cwd: PROJECT_ROOT, env: { NO_COLOR: "1", ...env }, echo });
}

/**
 * The whole command line of the agent with `args` (the executable first), as `deno task start` runs it. A
 * `--v8-flags=…` among `denoFlags` replaces the start task's (deno would add the two lists together); an empty
 * `--v8-flags=` runs the agent without any.
 */
export function agentArgv(args: string[], denoFlags: string[] = []): string[] {
  const [run, ...flags] = startCommand();
  const ownV8 = denoFlags.some((flag) => flag.startsWith("--v8-flags="));
  const kept = ownV8 ? flags.filter((flag) => !flag.startsWith("--v8-flags=")) : flags;
  return [Deno.execPath(), run, ...denoFlags.filter((flag) => flag !== "--v8-flags="), ...kept, ...args];
}

/** Runs the agent with `args` to completion; returns its exit code and output. */
export async function runAgent(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const child = startAgent(args, env);
  const status = await within(child.status, `agent ${args.join(" ")} to exit`, 120_000).catch(
    async (error) => {
      await child.stop("SIGKILL");
      throw new Error(`${error.message}\n${child.tail()}`);
    },
  );
  return { code: status.code, output: child.lines.join("\n") };
}
