/**
 * The IoT Identity service's enroll call: `POST <url>/v1/device/enroll` with the model and serial assertions
 * (`application/x.ubuntu.assertion`). The service answers JSON whatever the status:
 * `{"code":"","message":"","enrollment":{…}}` on success, `{"code":"EnrollDevice","message":…}` on failure.
 */
import { decodeEnrollment, type Enrollment } from "../identity/enrollment.ts";
import { EnrollmentError } from "../identity/enroll_request.ts";
import { errorMessage } from "../errors.ts";

/** The enroll endpoint under a base URL, joined as Go's path cleaning does (`/base/` -> `/base/v1/device/enroll`). */
export function enrollUrl(base: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/device/enroll`;
  return url;
}

/** Options of {@link requestEnrollment}. */
export interface EnrollRequestOptions {
  /** Time limit of the request, in ms. @default 30000 */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The HTTP client to use (a proxy's); the default fetch otherwise. */
  client?: Deno.HttpClient;
}

/** Answers larger than this are not an identity service's. */
const MAX_RESPONSE_BYTES = 1 << 20;

/**
 * Posts the assertions and returns the validated enrollment.
 * @throws {EnrollmentError} with the service's `(code) message`, or why the answer was unusable.
 */
export async function requestEnrollment(
  baseUrl: string,
  body: string,
  options: EnrollRequestOptions = {},
): Promise<Enrollment> {
  const url = enrollUrl(baseUrl);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let status: number;
  let text: string;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x.ubuntu.assertion" },
      body,
      signal,
      ...(options.client ? { client: options.client } : {}),
    });
    status = response.status;
    text = await readLimited(response);
  } catch (error) {
    options.signal?.throwIfAborted();
    const reason = timeout.aborted ? "no answer within the time limit" : errorMessage(error);
    throw new EnrollmentError(`cannot reach the identity service at ${url}: ${reason}`, "unreachable", {
      cause: error,
    });
  }
  let answer: { code?: unknown; message?: unknown; enrollment?: unknown };
  try {
    answer = JSON.parse(text);
    if (typeof answer !== "object" || answer === null) throw new TypeError("not an object");
  } catch {
    throw new EnrollmentError(
      `the identity service at ${url} answered HTTP ${status} with a body that is not JSON: ${
        JSON.stringify(text.slice(0, 120))
      }`,
      "invalid-response",
    );
  }
  if (typeof answer.code === "string" && answer.code !== "") {
    throw new EnrollmentError(`(${answer.code}) ${String(answer.message ?? "")}`, "rejected");
  }
  try {
    return decodeEnrollment(answer.enrollment);
  } catch (error) {
    throw new EnrollmentError(
      `the identity service at ${url} answered HTTP ${status} without usable credentials: ${
        errorMessage(error)
      }`,
      "invalid-response",
    );
  }
}

/**
 * The body as text, read at most {@link MAX_RESPONSE_BYTES}: a declared length over the limit is refused before
 * reading, and an undeclared one (chunked) is counted as it streams and cut at the limit — never buffered whole.
 */
async function readLimited(response: Response): Promise<string> {
  const declared = Number(response.headers.get("Content-Length") ?? "0");
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new Error(`answer too large (${declared} bytes)`);
  }
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw new Error(`answer too large (more than ${MAX_RESPONSE_BYTES} bytes)`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}
