/**
 * The test world with the agent's `$SNAP_DATA` and `$SNAP_COMMON` on a power-cut filesystem: the real mosquitto,
 * the strict fake snapd and the identity stub run as in every end-to-end test, the status files stay on the
 * ordinary disk (a tmpfs on a device), and whatever the world writes on the filesystem before the cuts begin is
 * synced, as an installed device's files are.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { syncDirectory } from "../../lib/files.ts";
import type { PowercutFs } from "./powercut_fs.ts";
import type { Child } from "./child.ts";
import { type EnrolledDevice, preEnroll } from "./enrolled_device.ts";
import { startWorld, type World, type WorldOptions } from "./world.ts";

/** A world whose agent keeps its files on `fs`. */
export interface PowercutWorld {
  world: World;
  fs: PowercutFs;
  /** `$SNAP_DATA` and `$SNAP_COMMON` on the filesystem. */
  dataDir: string;
  commonDir: string;
  /** The agent's environment: the world's, with the data directories on the filesystem. */
  env: Record<string, string>;
}

/** Starts a world whose agent's data directories are on `fs` (created and synced). */
export async function powercutWorld(fs: PowercutFs, options: WorldOptions = {}): Promise<PowercutWorld> {
  const dataDir = join(fs.path, "data");
  const commonDir = join(fs.path, "common");
  for (const dir of [dataDir, commonDir]) await Deno.mkdir(dir, { mode: 0o700 });
  await syncDirectory(fs.path);
  const world = await startWorld({ configure: false, ...options });
  return { world, fs, dataDir, commonDir, env: { SNAP_DATA: dataDir, SNAP_COMMON: commonDir } };
}

/**
 * A device enrolled already (its `.secret` synced), its agent started with its files on `fs` (and `agentEnv`),
 * and online.
 */
export async function enrolledAgentOnFs(
  fs: PowercutFs,
  device: EnrolledDevice,
  options: WorldOptions & { agentEnv?: Record<string, string> } = {},
): Promise<PowercutWorld & { agent: Child }> {
  const setup = await powercutWorld(fs, options);
  try {
    const secret = await preEnroll(setup.world, device, setup.dataDir);
    await writeDurably(secret, await Deno.readTextFile(secret));
    setup.env = { ...setup.env, ...options.agentEnv };
    const agent = setup.world.agent([], setup.env);
    await setup.world.dms.health(device.id, { timeoutMs: 30_000 });
    return { ...setup, agent };
  } catch (error) {
    await setup.world.stop();
    throw error;
  }
}

/** Writes `path` and syncs it and its directory: a file the device had before the cuts begin. */
export async function writeDurably(path: string, content: string): Promise<void> {
  await Deno.writeTextFile(path, content, { mode: 0o600 });
  using file = await Deno.open(path, { read: true, write: true });
  await file.sync();
  await syncDirectory(join(path, ".."));
}

/** `PRAGMA integrity_check` of the database at `path` (absent: "absent"); open it only when nothing else has. */
export function integrity(path: string): string {
  try {
    Deno.statSync(path);
  } catch {
    return "absent";
  }
  const db = new DatabaseSync(path);
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join("; ");
  } finally {
    db.close();
  }
}

/** Whether a state file is absent or whole JSON: "absent", "whole", or what is wrong with it. */
export async function wholeOrAbsent(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "absent";
    throw error;
  }
  try {
    JSON.parse(text);
    return "whole";
  } catch {
    return `half-written (${text.length} bytes)`;
  }
}
