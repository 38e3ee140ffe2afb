/**
 * An identity answer is bounded by bytes as it streams: a chunked answer (no Content-Length) larger than 1 MiB is
 * refused once the limit is crossed, and the agent stops reading there instead of buffering the whole answer.
 */
import { assertEquals, assertMatch, assertOk } from "../../support/assert.ts";
import { requestEnrollment } from "../../../lib/adapters/identity_http.ts";
import { EnrollmentError } from "../../../lib/identity/enroll_request.ts";

const LIMIT = 1 << 20;
const CHUNK = new Uint8Array(64 * 1024).fill(0x20); // JSON white space: valid until the end that never comes
const ANSWER_BYTES = 256 * LIMIT;

Deno.test("a chunked identity answer over 1 MiB is refused while streaming; the rest is never read", async () => {
  let sent = 0;
  let cancelled!: () => void;
  const whenCancelled = new Promise<void>((resolve) => (cancelled = resolve));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= ANSWER_BYTES) return controller.close();
        sent += CHUNK.length;
        controller.enqueue(CHUNK);
      },
      cancel: () => cancelled(),
    }, { highWaterMark: 0 });
    // a ReadableStream body goes out chunked: no Content-Length to refuse up front
    return new Response(body, { headers: { "Content-Type": "application/json" } });
  });
  try {
    const error = await requestEnrollment(`http://127.0.0.1:${server.addr.port}`, "assertions", {
      timeoutMs: 60_000,
    }).then(() => undefined, (error) => error);
    assertOk(error instanceof EnrollmentError, `refused: ${error}`);
    assertMatch(error.message, /answer too large \(more than 1048576 bytes\)$/);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      whenCancelled,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("the server's stream was never cancelled")), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    // the limit plus what the socket buffers held: far from the 256 MiB on offer
    assertOk(sent < 16 * LIMIT, `the server sent ${sent} bytes before the agent stopped reading`);
  } finally {
    await server.shutdown();
  }
  assertEquals(sent < ANSWER_BYTES, true);
});
