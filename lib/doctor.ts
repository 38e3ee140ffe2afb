/**
 * `agent doctor`: the checks a support engineer would run, each answered ok / warn / fail with a hint that names
 * what to type on this device. Nothing here changes the device: files are only read (a corrupt one is reported,
 * never moved), the change database is opened read-only, and the identity service is probed with an empty enroll
 * request, which it refuses without a trace.
 */
import { X509Certificate } from "node:crypto";
import { statfs } from "node:fs/promises";
import tls from "node:tls";
import { DatabaseSync } from "node:sqlite";
import type { AgentConfig } from "./settings.ts";
import { readTextIfExists } from "./files.ts";
import { decodeEnrollment, type Enrollment } from "./identity/enrollment.ts";
import { EnrollmentError, enrollUrl, requestEnrollment } from "./identity/identity_client.ts";
import { ParamsFile, type ParamsState } from "./identity/params.ts";
import { type OperatorHints, operatorHints } from "./operator_hints.ts";
import type { Logger } from "./log.ts";
import { brokerAddress, brokerTlsIdentity } from "./mqtt/broker_address.ts";
import { brokerTrust, explainVerificationFailure, isBrokerVerificationError } from "./mqtt/tls.ts";
import { connectNats } from "./nats/transport.ts";
import { NATS_USER } from "./nats/service.ts";
import { type AgentPaths, agentStatusPath } from "./paths.ts";
import { SnapdClient } from "./snapd/client.ts";
import { changeDatabasePath } from "./watchdog_daemon.ts";
import { runSnapctl } from "./system/snapctl.ts";

/** One check's outcome. */
export interface CheckResult {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  hint?: string;
}

/** What the doctor needs. */
export interface DoctorOptions {
  config: AgentConfig;
  paths: AgentPaths;
  env: Record<string, string | undefined>;
  log: Logger;
  /** @default Date.now() */
  now?: number;
  /** Free bytes for unprivileged users in a directory. @default statfs */
  freeBytes?: (dir: string) => Promise<number>;
  /** Runs `snapctl` (inside a snap). @default runSnapctl */
  snapctl?: (args: string[]) => Promise<{ success: boolean }>;
}

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;

const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
const warn = (name: string, detail: string, hint?: string): CheckResult => ({
  name,
  status: "warn",
  detail,
  hint,
});
const fail = (name: string, detail: string, hint?: string): CheckResult => ({
  name,
  status: "fail",
  detail,
  hint,
});

async function defaultFreeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return Number(stats.bavail) * Number(stats.bsize);
}

/** Runs every check, in order. */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { config, paths, log } = options;
  const now = options.now ?? Date.now();
  const hints = operatorHints(paths);
  const results: CheckResult[] = [];
  const snapd = new SnapdClient({ socketPath: config["snapd.socket"], timeoutMs: 5000 });
  try {
    results.push(await checkSnapd(snapd, paths.inSnap, options.snapctl ?? runSnapctl, hints));
    results.push(await checkAssertions(snapd));
  } finally {
    snapd.close();
  }
  const params = await new ParamsFile(paths, log).inspect();
  const enrollment = await readEnrollment(paths.credentials);
  const enrolled = enrollment !== undefined && !(enrollment instanceof Error);
  results.push(await checkIdentity(params, enrolled, hints));
  results.push(...checkCredentials(enrollment, now, await enrollmentFailure(paths), params, hints));
  if (enrolled) results.push(await checkBroker(enrollment, config));
  if (config["nats.enabled"]) results.push(await checkNats(config, hints));
  results.push(checkChangeDatabase(changeDatabasePath(config, paths, options.env)));
  results.push(await checkDisk(paths.dataDir, options.freeBytes ?? defaultFreeBytes));
  return results;
}

async function checkSnapd(
  snapd: SnapdClient,
  inSnap: boolean,
  snapctl: NonNullable<DoctorOptions["snapctl"]>,
  hints: OperatorHints,
): Promise<CheckResult> {
  const name = "snapd";
  if (inSnap && !(await snapctl(["is-connected", "snapd-control"]).then((r) => r.success, () => false))) {
    return fail(name, "the snapd-control interface is not connected", hints.connect("snapd-control"));
  }
  try {
    const info = await snapd.systemInfo();
    return ok(name, `snapd ${info.version} answers on ${snapd.socketPath}`);
  } catch (error) {
    return fail(
      name,
      `snapd does not answer on ${snapd.socketPath}: ${(error as Error).message}`,
      "is snapd running?",
    );
  }
}

async function checkAssertions(snapd: SnapdClient): Promise<CheckResult> {
  const name = "assertions";
  try {
    const [model, serial] = [await snapd.assertions("model"), await snapd.assertions("serial")];
    if (model.count === 0) {
      return fail(name, "no model assertion", "the device image has no model: reinstall it");
    }
    if (serial.count === 0) {
      return fail(
        name,
        "no serial assertion yet",
        "the device gets one from its brand's serial vault; check its network",
      );
    }
    return ok(name, "model and serial assertions present");
  } catch (error) {
    return fail(name, `cannot read the assertions: ${(error as Error).message}`);
  }
}

async function readEnrollment(path: string): Promise<Enrollment | Error | undefined> {
  const text = await readTextIfExists(path).catch((error) => error as Error);
  if (text === undefined || text instanceof Error) return text;
  try {
    return decodeEnrollment(JSON.parse(text));
  } catch (error) {
    return error as Error;
  }
}

/** Why the running agent's last enrollment attempt failed, from its status file. */
async function enrollmentFailure(paths: AgentPaths): Promise<string | undefined> {
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
async function checkIdentity(
  params: ParamsState,
  enrolled: boolean,
  hints: OperatorHints,
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
  if (params.kind !== "configured") {
    return problem("no identity service URL (params missing or empty)", hints.setUrl);
  }
  const { url } = params.params;
  try {
    await requestEnrollment(url, "", { timeoutMs: 5000 });
    return ok(name, `${url} answers`);
  } catch (error) {
    if (!(error instanceof EnrollmentError)) {
      return problem(`${url}: ${(error as Error).message}`, "check the URL");
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

function checkCredentials(
  enrollment: Enrollment | Error | undefined,
  now: number,
  lastFailure: string | undefined,
  params: ParamsState,
  hints: OperatorHints,
): CheckResult[] {
  const name = "credentials";
  if (enrollment === undefined) {
    if (lastFailure && /already enrolled/i.test(lastFailure)) {
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
    return [fail(name, `the client certificate cannot be read: ${(error as Error).message}`)];
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

async function checkBroker(enrollment: Enrollment, config: AgentConfig): Promise<CheckResult> {
  const name = "broker";
  const { mqttUrl, mqttPort } = enrollment.credentials;
  let address, trust;
  try {
    address = brokerAddress(mqttUrl, mqttPort);
    trust = await brokerTrust({
      verify: config["mqtt.verify"],
      caFile: config["mqtt.ca"],
      organizationRoot: enrollment.organization.rootcert,
    });
  } catch (error) {
    return fail(name, (error as Error).message);
  }
  const broker = address.label;
  const identity = brokerTlsIdentity(address);
  return await new Promise((resolve) => {
    const socket = tls.connect({
      host: address.host,
      port: address.port,
      servername: identity.servername,
      checkServerIdentity: identity.checkServerIdentity,
      ca: trust.ca,
      cert: enrollment.credentials.certificate,
      key: enrollment.credentials.privateKey,
      rejectUnauthorized: trust.verify,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(name, `no TLS handshake with ${broker} within 10 s`, "check the network and the broker"));
    }, 10_000);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.end();
      resolve(
        trust.verify ? ok(name, `TLS handshake with ${broker}, certificate verified`) : warn(
          name,
          `TLS handshake with ${broker}, certificate NOT verified (mqtt.verify=false)`,
          "set mqtt.ca instead",
        ),
      );
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(
        isBrokerVerificationError(error)
          ? fail(name, explainVerificationFailure(error, broker, trust))
          : fail(name, `cannot reach ${broker}: ${error.message}`, "check the network and the broker"),
      );
    });
  });
}

async function checkNats(config: AgentConfig, hints: OperatorHints): Promise<CheckResult> {
  const name = "NATS";
  const servers = config["nats.url"];
  const caFile = config["nats.ca"];
  try {
    const connection = await connectNats({
      servers,
      user: NATS_USER,
      pass: config["nats.snapd.password"],
      reconnect: false,
      timeout: 3000,
      ...(caFile ? { tls: { ca: await Deno.readTextFile(caFile) } } : {}),
    });
    const server = connection.getServer();
    await connection.close();
    return ok(name, `${server} accepts user ${NATS_USER}`);
  } catch (error) {
    const message = (error as Error).message;
    if (/authorization/i.test(message)) {
      return fail(
        name,
        `${servers.join(",")} refuses user ${NATS_USER}: ${message}`,
        `nats.snapd.password must match the NATS server's: ${hints.setNatsPassword}`,
      );
    }
    return warn(
      name,
      `${servers.join(",")} not reachable: ${message}`,
      "is the NATS snap installed and running? (the local API is unavailable)",
    );
  }
}

function checkChangeDatabase(path: string): CheckResult {
  const name = "change database";
  let db: DatabaseSync;
  try {
    Deno.statSync(path);
  } catch {
    return warn(name, `${path} does not exist yet`, "is the watchdog daemon running?");
  }
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (error) {
    return fail(
      name,
      `${path} cannot be opened: ${(error as Error).message}`,
      "the watchdog moves it aside at its next start",
    );
  }
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    const verdict = rows.map((row) => row.integrity_check).join("; ");
    return verdict === "ok"
      ? ok(name, `${path} passes PRAGMA integrity_check`)
      : fail(name, `${path}: ${verdict}`, "restart the watchdog: it moves a corrupt database aside");
  } catch (error) {
    return fail(
      name,
      `${path}: ${(error as Error).message}`,
      "restart the watchdog: it moves a corrupt database aside",
    );
  } finally {
    db.close();
  }
}

async function checkDisk(dir: string, freeBytes: (dir: string) => Promise<number>): Promise<CheckResult> {
  const name = "disk";
  try {
    const free = await freeBytes(dir);
    const detail = `${(free / MIB).toFixed(0)} MiB free in ${dir}`;
    if (free < 10 * MIB) return fail(name, detail, "free some space: state files cannot be written safely");
    if (free < 100 * MIB) return warn(name, detail, "space is getting low");
    return ok(name, detail);
  } catch (error) {
    return fail(name, `cannot tell the free space in ${dir}: ${(error as Error).message}`);
  }
}

/** The report: one line per check, hints indented; `failed` when any check failed. */
export function formatDoctor(results: CheckResult[]): { text: string; failed: boolean } {
  const label = { ok: "[ ok ]", warn: "[warn]", fail: "[FAIL]" };
  const lines = results.flatMap((
    r,
  ) => [`${label[r.status]} ${r.name}: ${r.detail}`, ...(r.hint ? [`       hint: ${r.hint}`] : [])]);
  return { text: lines.join("\n"), failed: results.some((r) => r.status === "fail") };
}
