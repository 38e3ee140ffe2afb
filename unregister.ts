/**
 * The `unregister` executable: clears the device's enrollment so it can join another DMS.
 *
 * Inside the snap (run as root: `sudo iot-agent.unregister`): stops the agent (`snapctl stop`), removes `.secret`
 * and `params` from `$SNAP_DATA`, and starts the agent again, which then waits for a new identity URL.
 * Outside a snap: removes the files it finds in the agent's data directory (a running agent notices and returns to
 * waiting for a URL). Running it again does nothing more. `device-data.bin` is kept, as the Go agent did.
 *
 * Note that the identity service will not enroll the device again until an operator resets its registration.
 *
 * Exit codes: 0 done (or nothing to do); 1 a step failed (said which); 2 bad command line; 77 not root in a snap.
 */
import { parseArgs } from "node:util";
import { removeIfExists } from "./lib/files.ts";
import { operatorHints } from "./lib/operator_hints.ts";
import { processPaths } from "./lib/paths.ts";
import { runSnapctl } from "./lib/adapters/snapctl.ts";
import { errorMessage } from "./lib/errors.ts";

const USAGE = `Usage: unregister [--help]

Clears the enrollment of this device (.secret and params) so that it can join another DMS.
In the snap, run it as root (sudo iot-agent.unregister): it stops the agent, removes the files and starts the
agent again, which then waits for a new identity service URL (snap set iot-agent url=URL).

Exit codes: 0 done or nothing to do, 1 a step failed, 2 bad command line, 77 not run as root in the snap.`;

async function snapctl(...args: string[]): Promise<void> {
  const output = await runSnapctl(args);
  if (!output.success) throw new Error(`snapctl ${args.join(" ")} failed: ${output.stderr}`);
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

async function main(args: string[]): Promise<number> {
  let help = false;
  try {
    help = Boolean(
      parseArgs({ args, options: { help: { type: "boolean", short: "h" } }, strict: true }).values.help,
    );
  } catch (error) {
    console.error(`unregister: ${errorMessage(error)} (see unregister --help)`);
    return 2;
  }
  if (help) {
    console.log(USAGE);
    return 0;
  }
  const paths = processPaths();
  // the instance name: a parallel install (`iot-agent_foo`) stops and starts its own agent, not the other one
  const service = `${paths.snapName}.agent`;
  if (paths.inSnap && !isRoot()) {
    console.error(`unregister: must be run as root: sudo ${paths.snapName}.unregister`);
    return 77;
  }
  let stopped = false;
  let code = 0;
  try {
    if (paths.inSnap) {
      await snapctl("stop", service);
      stopped = true;
      console.log(`stopped ${service}`);
    }
    const removed: string[] = [];
    for (const path of [paths.credentials, paths.params]) if (await removeIfExists(path)) removed.push(path);
    console.log(
      removed.length > 0
        ? removed.map((path) => `removed ${path}`).join("\n")
        : `nothing to remove: no .secret or params in ${paths.dataDir} (not enrolled)`,
    );
  } catch (error) {
    console.error(`unregister: ${errorMessage(error)}`);
    code = 1;
  }
  if (stopped) {
    // whatever happened above, the agent must not stay stopped
    try {
      await snapctl("start", service);
      console.log(
        `started ${service}; it waits for a new identity service URL (${operatorHints(paths).setUrl})`,
      );
    } catch (error) {
      console.error(`unregister: ${errorMessage(error)}`);
      code = 1;
    }
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
