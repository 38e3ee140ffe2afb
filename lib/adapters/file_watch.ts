/** The file system's change notifications (inotify), for the one file the agent must notice disappearing. */

/** Calls `onRemoved` once `path` no longer exists; `close()` stops watching. */
export type WatchRemoval = (path: string, onRemoved: () => void) => { close(): void };

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Calls `onRemoved` once `path` no longer exists; watches the file itself, so nothing wakes up while idle. */
export const watchRemoval: WatchRemoval = (path, onRemoved) => {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(path, { recursive: false });
  } catch {
    onRemoved(); // gone already
    return { close() {} };
  }
  (async () => {
    for await (const _event of watcher) {
      if (!(await exists(path))) {
        onRemoved();
        return;
      }
    }
  })().catch(() => {});
  return {
    close() {
      try {
        watcher.close();
      } catch { /* closed already */ }
    },
  };
};
