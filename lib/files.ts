/**
 * State-file helpers: atomic replacement (temp file, fsync, rename, fsync of the directory) so a power cut
 * leaves either the old or the new content, never a torn file; directories created and files removed durably
 * (a new name, or a name gone, lasts only once its parent directory is synced: a power cut otherwise brings
 * back what was there before); and moving a corrupt file aside instead of overwriting it.
 */
import { basename, dirname, join } from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the file. @default 0o600 */
  mode?: number;
  /**
   * Sync the file and its directory, so the new content survives a power cut. Without, the replacement is still
   * atomic (never a torn file) but a power cut may bring back the previous content — fine for a file that is
   * rewritten anyway, and it spares the flash the journal commits. @default true
   */
  durable?: boolean;
}

/** Replaces `path` with `data` atomically and durably. Creates the parent directory (0700) when missing. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await makeDirectory(dir);
  const temp = join(dir, `.${basename(path)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const mode = options.mode ?? 0o600;
  try {
    using file = await Deno.open(temp, { write: true, createNew: true, mode });
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    if (options.durable ?? true) await file.sync();
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  try {
    await Deno.chmod(temp, mode); // the umask may have narrowed the creation mode
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  if (options.durable ?? true) await syncDirectory(dir);
}

/** Flushes a directory entry (a rename or unlink) to disk. */
export async function syncDirectory(dir: string): Promise<void> {
  using handle = await Deno.open(dir, { read: true });
  await handle.sync();
}

/**
 * Creates `path` (0700) and its missing parents, durably: each new directory is synced into its parent, so a
 * power cut cannot take back a folder the agent already wrote files into. Nothing is written when it exists.
 */
export async function makeDirectory(path: string): Promise<void> {
  const missing: string[] = [];
  for (let dir = path; !(await exists(dir)); dir = dirname(dir)) {
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    await Deno.mkdir(dir, { mode: 0o700 }).catch((error) => {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    });
    await syncDirectory(dirname(dir));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Reads a text file, or returns `undefined` when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Removes a file durably (its directory synced: a power cut cannot bring it back); false when it did not exist. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  await syncDirectory(dirname(path));
  return true;
}

/**
 * Renames a corrupt file to `<path>.corrupt-<UTC time>` so it can be inspected, and returns the new path.
 * `now` is injectable for tests.
 */
export async function moveAside(path: string, now: Date = new Date()): Promise<string> {
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const target = `${path}.corrupt-${stamp}`;
  await Deno.rename(path, target);
  await syncDirectory(dirname(path));
  return target;
}

/** A directory the agent cannot use: missing and not creatable, a file, or not writable. */
export class UnusableDirectoryError extends Error {
  override name = "UnusableDirectoryError";
}

/**
 * Makes sure `path` is a directory the process can write to, creating it (0700) when missing.
 * @throws {UnusableDirectoryError} one line naming the directory, what it is for and what is wrong
 */
export async function ensureDirectory(path: string, role: string): Promise<void> {
  const problem = await Deno.stat(path).then(
    (info) => info.isDirectory ? undefined : "it exists and is not a directory",
    (error) =>
      error instanceof Deno.errors.NotFound
        ? makeDirectory(path).then(
          () => undefined,
          (cause) => `it does not exist and cannot be created (${describeFsError(cause)})`,
        )
        : `it cannot be read (${describeFsError(error)})`,
  );
  if (problem) throw new UnusableDirectoryError(`cannot use ${path} (${role}): ${problem}`);
  // its name synced once more: an earlier start may have died between creating it and syncing its parent, and
  // a later power cut would take it back with every synced file in it (one fsync per start, none while running)
  await syncDirectory(dirname(path)).catch(() => {}); // a parent the agent may not open is not its to sync
}

/** An fs error's message without Deno's "…: os error N" noise repeated. */
function describeFsError(error: unknown): string {
  return error instanceof Error ? error.message.replace(/ \(os error \d+\)/, "") : String(error);
}
