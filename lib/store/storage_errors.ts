/** What a storage failure is: the one place that reads sqlite's and the file system's error texts. */

/** True when sqlite or the file system says there is no space left. */
export function isStorageFull(error: unknown): boolean {
  return /database or disk is full|no space left on device|ENOSPC|SQLITE_FULL/i.test(
    error instanceof Error ? error.message : String(error),
  );
}
