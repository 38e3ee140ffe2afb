/** Where the change database lives, as the watchdog, `status`, `doctor` and `check` all find it. */
import type { AgentConfig } from "../settings.ts";
import { type AgentPaths, expandVariables } from "../paths.ts";

/** Where the change database is: `snaplogger.database.location` with variables expanded. */
export function changeDatabasePath(
  config: AgentConfig,
  paths: AgentPaths,
  env: Record<string, string | undefined>,
): string {
  return expandVariables(config["snaplogger.database.location"], {
    ...env,
    SNAP_DATA: env.SNAP_DATA || paths.dataDir,
  });
}
