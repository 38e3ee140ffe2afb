/**
 * Which line of the per-snap queue an action waits in. Actions run one at a time per snap; the actions on no snap
 * (`device`, `server`, `list`, …) share the empty key. Uploads (`logs`, `snapshot`) wait in a line of their own,
 * one at a time: an upload server that takes the body and never answers holds only the uploads behind it (until
 * `uploads.timeout`), never a `device` or a `list`.
 */
import type { ActionRequest } from "../dms_protocol/messages.ts";

/** Actions that upload to a URL the DMS gives. */
export const UPLOAD_ACTIONS: ReadonlySet<string> = new Set(["logs", "snapshot"]);

/** The key of the uploads' own line: no snap name can be it (snap names are lower case letters, digits, `-`). */
export const UPLOAD_QUEUE = "(uploads)";

/** The queue key of `request`. */
export function queueKey(request: ActionRequest): string {
  return UPLOAD_ACTIONS.has(request.action) ? UPLOAD_QUEUE : request.snap;
}
