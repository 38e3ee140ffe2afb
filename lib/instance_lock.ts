/**
 * One daemon of a kind per data directory: an exclusive `flock` on `<dir>/<name>.lock`, which the kernel releases
 * when the process ends, however it ends (no stale lock after a SIGKILL or a power cut). The file holds the
 * owner's pid, so that a second daemon can say who holds it.
 */

/** Another process holds the lock. */
export class InstanceLockedError extends Error {
  override name = "InstanceLockedError";

  constructor(readonly path: string, readonly pid: number | undefined) {
    super(`${path} is locked by ${pid ? `pid ${pid}` : "another process"}`);
  }
}

/** A held lock. */
export interface InstanceLock {
  release(): void;
}

/**
 * Takes the lock at `path` (creating the file, 0600) and writes this process's pid into it.
 * @throws {InstanceLockedError} when another process holds it
 */
export async function lockInstance(path: string): Promise<InstanceLock> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!(await file.tryLock(true))) {
    const owner = Number((await Deno.readTextFile(path).catch(() => "")).trim());
    file.close();
    throw new InstanceLockedError(path, Number.isSafeInteger(owner) && owner > 0 ? owner : undefined);
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return {
    release() {
      try {
        file.close(); // closing the last descriptor releases the flock
      } catch { /* closed already */ }
    },
  };
}
