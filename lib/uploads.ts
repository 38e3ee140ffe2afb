/**
 * HTTP PUT of a stream of known length, as presigned upload URLs (S3 and the like) require: the body is streamed
 * with a `Content-Length` header, never chunked and never held whole in memory. Any 2xx answer is success.
 */
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";

/** Answers larger than this are cut in error messages. */
const ERROR_BODY_LIMIT = 200;

/** PUTs `body` (`length` bytes) to `url`. @throws {Error} with the status and the start of the answer. */
export function uploadStream(
  url: URL,
  body: ReadableStream<Uint8Array>,
  length: number,
  timeoutMs = 600_000,
): Promise<void> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, {
      method: "PUT",
      headers: { "Content-Length": length },
      timeout: timeoutMs,
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    request.on("error", (error) => reject(new Error(`upload to ${url.host} failed: ${error.message}`)));
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (text.length < ERROR_BODY_LIMIT) text += chunk;
      });
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve();
        reject(
          new Error(
            `upload to ${url.host} answered HTTP ${status}: ${text.slice(0, ERROR_BODY_LIMIT).trim()}`,
          ),
        );
      });
    });
    const source = Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]);
    source.on("error", (error) => request.destroy(error));
    source.pipe(request);
  });
}
