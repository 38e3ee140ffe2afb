/**
 * `logs`: `data` = `{"url":"<presigned PUT URL>","limit":<lines>}` (limit 100 when absent). The snaps' service
 * journal (`GET /v2/logs?n=<limit>`) is written to a temporary file, one line per entry as the Go agent
 * formatted it — `[<time>] <pid> <sid> <message>` — then uploaded from that file with its exact length.
 */
import type { ActionHandler } from "./context.ts";
import { parseDataObject, requireUploadUrl } from "./validation.ts";

/** Lines uploaded when `limit` is absent (or 0, the Go agent's zero value for absent). */
export const DEFAULT_LOG_LINES = 100;

/** The most lines one `logs` action asks snapd for: a bound on what one request makes the device read and upload. */
export const MAX_LOG_LINES = 10_000;

/** An RFC 3339 time as Go's `time.Time.String()` prints it (`2021-06-01 12:00:00.12 +0000 UTC`). */
export function goTimeString(rfc3339: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339);
  if (!match) return rfc3339;
  const [, date, time, fraction = "", zone] = match;
  const trimmed = fraction.replace(/0+$/, "");
  const seconds = trimmed ? `${time}.${trimmed}` : time;
  const offset = zone === "Z" ? "+0000 UTC" : `${zone.replace(":", "")} ${zone.replace(":", "")}`;
  return `${date} ${seconds} ${offset}`;
}

/** The `logs` action. */
export const logsAction: ActionHandler = async (request, context) => {
  const data = parseDataObject(request.data, "logs");
  const url = requireUploadUrl(data.url, "logs", context.allowHttpUploads);
  const limit = data.limit ?? DEFAULT_LOG_LINES;
  // snapd reads n<0 as "everything": a negative or huge limit would upload the whole journal
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0 || limit > MAX_LOG_LINES) {
    throw new TypeError(
      `invalid data for logs: "limit" must be a whole number of lines from 1 to ${MAX_LOG_LINES}`,
    );
  }
  const path = await Deno.makeTempFile({ prefix: "iot-agent-logs-" });
  try {
    let length = 0;
    {
      using file = await Deno.open(path, { write: true, truncate: true });
      const encoder = new TextEncoder();
      for await (const entry of context.snapd.logs({ n: limit === 0 ? DEFAULT_LOG_LINES : limit })) {
        const line = encoder.encode(
          `[${goTimeString(entry.timestamp)}] ${entry.pid} ${entry.sid} ${entry.message}\n`,
        );
        await file.write(line);
        length += line.length;
      }
    }
    using file = await Deno.open(path, { read: true });
    await context.upload(url, file.readable, length);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
  return {};
};
