/**
 * The enroll request as the enroller sees it: the body it sends (the device's model and serial assertions), the
 * port that sends it (the HTTP call lives in lib/adapters/identity_http.ts, wired in main.ts), and why an attempt
 * failed.
 */
import type { AssertionBundle } from "../snapd/port.ts";
import { parseAssertions } from "../snapd/assertions.ts";
import type { Enrollment } from "./enrollment.ts";

/** Why an enrollment attempt failed; every reason is retried. */
export type EnrollmentFailure = "no-assertions" | "unreachable" | "rejected" | "invalid-response";

/** A failed enrollment attempt. */
export class EnrollmentError extends Error {
  override name = "EnrollmentError";
  constructor(message: string, readonly reason: EnrollmentFailure, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Sends the enroll request and returns the validated enrollment (main.ts wires the proxy's HTTP client in). */
export type RequestEnrollment = (
  url: string,
  body: string,
  options: { signal?: AbortSignal },
) => Promise<Enrollment>;

/**
 * The enroll request body: the first model assertion, `\n`, the first serial assertion, each ending with
 * exactly one newline — so the two are separated by one blank line.
 * @throws {EnrollmentError} `no-assertions` when the device has no model or no serial assertion yet.
 */
export function enrollBody(model: AssertionBundle, serial: AssertionBundle): string {
  const first = (bundle: AssertionBundle, type: string) => {
    const assertion = bundle.count > 0
      ? parseAssertions(bundle.text).find((a) => a.type === type)
      : undefined;
    if (!assertion) {
      throw new EnrollmentError(
        `no ${type} assertion yet (snapd has none; a device gets its serial from its brand's serial vault)`,
        "no-assertions",
      );
    }
    return assertion.text;
  };
  return `${first(model, "model")}\n${first(serial, "serial")}`;
}
