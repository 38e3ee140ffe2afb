/**
 * Where the agent keeps its files. In a snap: `params`, `.secret` (and later the change database and watchdog
 * reports) in `$SNAP_DATA`, `device-data.bin` in `$SNAP_COMMON`, as the Go agent did (its
 * `$SNAP_DATA/../current/` is the same directory on a device). Outside a snap the same environment variables
 * are honoured; without them the files go to `/var/lib/iot-agent` (root) or `$XDG_STATE_HOME/iot-agent`.
 * The daemons' status files are runtime state, rewritten while they run: they go to a tmpfs (`/run/snap.<name>`
 * in a snap, `$XDG_RUNTIME_DIR/iot-agent` outside), so an idle device writes nothing to its flash.
 */
import { dirname, join } from "node:path";

/** Resolved file locations. */
export interface AgentPaths {
  /** Directory of `params` and `.secret`. */
  dataDir: string;
  /** Directory of `device-data.bin`. */
  commonDir: string;
  /** Directory of the daemons' status files (a tmpfs on a device; the data directory as a fallback). */
  runtimeDir: string;
  /** True when running inside a snap (`$SNAP` and `$SNAP_NAME` are set). */
  inSnap: boolean;
  /** The snap's name as the operator types it (`$SNAP_INSTANCE_NAME`, else `$SNAP_NAME`), inside a snap. */
  snapName?: string;
  /** How the directories were chosen, for the start-up log line. */
  origin: string;
  /** `params`: `{"url","path"}` of the identity service. */
  params: string;
  /** `.secret`: the enrollment (credentials). */
  credentials: string;
  /** `device-data.bin`: the identity service's opaque device data. */
  deviceData: string;
  /**
   * The credentials path written into `params` for the Go agent's sake: inside a snap it goes through the
   * `current` symlink so it stays valid after a snap refresh (snapd copies `$SNAP_DATA` to each new revision).
   */
  credentialsPathForParams: string;
}

/** Environment variables that decide the paths. */
export type PathEnv = Partial<
  Record<
    | "SNAP"
    | "SNAP_NAME"
    | "SNAP_INSTANCE_NAME"
    | "SNAP_DATA"
    | "SNAP_COMMON"
    | "HOME"
    | "XDG_STATE_HOME"
    | "XDG_RUNTIME_DIR",
    string
  >
>;

/** Resolves the paths from the environment; `isRoot` decides the default outside a snap. */
export function resolvePaths(env: PathEnv, isRoot: boolean): AgentPaths {
  const inSnap = Boolean(env.SNAP && env.SNAP_NAME);
  let dataDir: string;
  let origin: string;
  if (env.SNAP_DATA) {
    dataDir = env.SNAP_DATA;
    origin = "$SNAP_DATA";
  } else if (isRoot) {
    dataDir = "/var/lib/iot-agent";
    origin = "default for root outside a snap";
  } else {
    const state = env.XDG_STATE_HOME || join(env.HOME ?? ".", ".local", "state");
    dataDir = join(state, "iot-agent");
    origin = "default for a user outside a snap";
  }
  const commonDir = env.SNAP_COMMON || dataDir;
  const credentials = join(dataDir, ".secret");
  const runtimeDir = inSnap
    ? `/run/snap.${env.SNAP_INSTANCE_NAME || env.SNAP_NAME}`
    : env.XDG_RUNTIME_DIR
    ? join(env.XDG_RUNTIME_DIR, "iot-agent")
    : dataDir;
  return {
    dataDir,
    commonDir,
    runtimeDir,
    inSnap,
    snapName: inSnap ? env.SNAP_INSTANCE_NAME || env.SNAP_NAME : undefined,
    origin: env.SNAP_COMMON ? `${origin}, $SNAP_COMMON` : origin,
    params: join(dataDir, "params"),
    credentials,
    deviceData: join(commonDir, "device-data.bin"),
    credentialsPathForParams: inSnap && env.SNAP_DATA
      ? join(dirname(env.SNAP_DATA), "current", ".secret")
      : credentials,
  };
}

/** The agent daemon's status file (what `agent status` reads). */
export function agentStatusPath(paths: Pick<AgentPaths, "runtimeDir">): string {
  return join(paths.runtimeDir, "status.json");
}

/** The watchdog daemon's status file. */
export function watchdogStatusPath(paths: Pick<AgentPaths, "runtimeDir">): string {
  return join(paths.runtimeDir, "watchdog-status.json");
}

/** Resolves the paths of this process. */
export function processPaths(): AgentPaths {
  const env = Deno.env.toObject() as PathEnv;
  let isRoot = false;
  try {
    isRoot = Deno.uid() === 0;
  } catch {
    isRoot = env.HOME === "/root";
  }
  return resolvePaths(env, isRoot);
}

/** Expands `$VAR` and `${VAR}` in `text` from `env` (unknown variables become empty, as in a shell). */
export function expandVariables(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_, braced, bare) => env[braced ?? bare] ?? "",
  );
}
