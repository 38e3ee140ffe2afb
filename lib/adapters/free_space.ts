/** How much room the file system has left, as the kernel tells it (`statfs`). */
import { statfs } from "node:fs/promises";

/** Free bytes for unprivileged users in the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return Number(stats.bavail) * Number(stats.bsize);
}
