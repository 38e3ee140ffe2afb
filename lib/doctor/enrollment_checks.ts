/** The doctor's checks of the enrollment: the identity service, the credentials, the clock against them. */
import { X509Certificate } from "node:crypto";
import { type CheckResult, fail, ok, warn } from "./check_result.ts";
import { readTextIfExists } from "../files.ts";
import { decodeEnrollment, type Enrollment } from "../identity/enrollment.ts";
import { enrollUrl, requestEnrollment } from "../adapters/identity_http.ts";
import { EnrollmentError } from "../identity/enroll_request.ts";
import type { ParamsState } from "../identity/params.ts";
import type { OperatorHints } from "../operator_hints.ts";
import { httpClientFor, type Proxies } from "../net/proxy.ts";
import { type AgentPaths, agentStatusPath } from "../paths.ts";
import { asError, errorMessage, saysAlreadyEnrolled } from "../errors.ts";

const DAY_MS = 86_400_000;

export async function readEnrollment(path: string): Promise<Enrollment | Error | undefined> {
  const text = await readTextIfExists(path).catch((error) => asError(error));
  if (text === undefined || text instanceof Error) return text;
  try {
    return decodeEnrollment(JSON.parse(text));
  } catch (error) {
    return asError(error);
  }
}

/** Why the running agent's last enrollment attempt failed, from its status file. */
export async function enrollmentFailure(paths: AgentPaths): Promise<string | undefined> {
  try {
    const status = JSON.parse(await Deno.readTextFile(agentStatusPath(paths)));
    return typeof status.enrollmentError === "string" ? status.enrollmentError : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The identity service: `params` readable and holding a URL, and the URL serving the enroll endpoint — probed with
 * an empty enroll request, which an IoT Identity service refuses in JSON (`no data supplied`) and which changes
 * nothing there. A 404, a page that is not JSON, or no answer fail on a device that still has to enroll, and
 * only warn on an enrolled one (the service is needed again only to enroll again).
 */
export async function checkIdentity(
  params: ParamsState,
  enrolled: boolean,
  hints: OperatorHints,
  proxies: Proxies | undefined,
): Promise<CheckResult> {
  const name = "identity service";
  const problem = (detail: string, hint: string) =>
    enrolled ? warn(name, detail, `${hint} (only needed to enroll again)`) : fail(name, detail, hint);
  if (params.kind === "corrupt") {
    return problem(
      `params is corrupt (${params.error}); the agent moves it aside at its next start`,
      `set the URL again: ${hints.setUrl}`,
    );
  }
  if (params.kind === "refused") {
    return problem(`params: ${params.error}`, `set an https URL: ${hints.setUrl}`);
  }
  if (params.kind !== "configured") {
    return problem("no identity service URL (params missing or empty)", hints.setUrl);
  }
  const { url } = params.params;
  try {
    const client = proxies && httpClientFor(proxies, new URL(url));
    await requestEnrollment(url, "", { timeoutMs: 5000, client });
    return ok(name, `${url} answers`);
  } catch (error) {
    if (!(error instanceof EnrollmentError)) {
      return problem(`${url}: ${errorMessage(error)}`, "check the URL");
    }
    if (error.reason === "rejected") {
      return ok(name, `${url} answers as an IoT Identity service (an empty probe: ${error.message})`);
    }
    if (error.reason === "unreachable") {
      return problem(error.message, "check the URL and the device's network");
    }
    return problem(
      error.message,
      `is this the identity service's URL? the agent posts to ${enrollUrl(url)}; ${hints.setUrl}`,
    );
  }
}

export function checkCredentials(
  enrollment: Enrollment | Error | undefined,
  now: number,
  lastFailure: string | undefined,
  params: ParamsState,
  hints: OperatorHints,
): CheckResult[] {
  const name = "credentials";
  if (enrollment === undefined) {
    if (lastFailure && saysAlreadyEnrolled(lastFailure)) {
      return [fail(
        name,
        `not enrolled: the identity service says this device is already enrolled (${lastFailure})`,
        "an operator must reset the device's registration on the identity service (back to waiting) before it can " +
          "enroll again",
      )];
    }
    if (params.kind !== "configured") return [fail(name, "not enrolled: no .secret", hints.setUrl)];
    return [fail(
      name,
      `not enrolled: no .secret${lastFailure ? `; the last attempt failed: ${lastFailure}` : ""}`,
      "the agent enrolls once the identity service accepts the device; see the identity service check",
    )];
  }
  if (enrollment instanceof Error) return [fail(name, `.secret is unusable: ${enrollment.message}`)];
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(enrollment.credentials.certificate);
  } catch (error) {
    return [fail(name, `the client certificate cannot be read: ${errorMessage(error)}`)];
  }
  const notBefore = Date.parse(certificate.validFrom);
  const notAfter = Date.parse(certificate.validTo);
  const results: CheckResult[] = [];
  const who = `device ${enrollment.id}, certificate valid until ${new Date(notAfter).toISOString()}`;
  if (now > notAfter) {
    results.push(
      fail(
        name,
        `the client certificate expired on ${new Date(notAfter).toISOString()}`,
        "re-enroll the device",
      ),
    );
  } else if (notAfter - now < 30 * DAY_MS) {
    results.push(warn(name, `${who}: expires in less than 30 days`, "plan a re-enrollment"));
  } else {
    results.push(ok(name, who));
  }
  results.push(
    now < notBefore
      ? fail(
        "clock",
        `the system clock (${new Date(now).toISOString()}) is before the certificate's notBefore (${
          new Date(notBefore).toISOString()
        })`,
        "fix the time (NTP): TLS cannot work",
      )
      : ok("clock", `${new Date(now).toISOString()} is within the certificate's validity`),
  );
  return results;
}
