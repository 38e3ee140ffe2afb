/**
 * `snapshot`: `data` = `{"url":"<presigned PUT URL>"}`. Takes a snapshot of the snap (`POST /v2/snaps`), waits
 * for its export to be available (`GET /v2/snapshots/<set>/export`, retried with backoff), then streams the
 * export to the URL with its length — a snapshot can be large, so it is never held in memory.
 */
import { retry } from "../retry.ts";
import { retryOnConflict } from "./conflicts.ts";
import type { ActionHandler } from "./context.ts";
import { parseDataObject, requireSnap, requireUploadUrl } from "./validation.ts";

/** How long the export may take to become available, in ms. */
const EXPORT_WAIT_MS = 60_000;

/** The `snapshot` action. */
export const snapshotAction: ActionHandler = async (request, context) => {
  const snap = requireSnap(request.snap, "snapshot");
  const url = requireUploadUrl(
    parseDataObject(request.data, "snapshot").url,
    "snapshot",
    context.allowHttpUploads,
  );
  const { setId } = await retryOnConflict(() => context.snapd.snapshot([snap]), context);
  const exported = await retry(() => context.snapd.exportSnapshot(setId), {
    clock: context.clock,
    initialMs: 200,
    maxMs: 5000,
    budgetMs: EXPORT_WAIT_MS,
  });
  await context.upload(url, exported.body, exported.length);
  return { result: String(setId) };
};
