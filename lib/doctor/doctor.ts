/**
 * `agent doctor`: the checks a support engineer would run, each answered ok / warn / fail with a hint that names
 * what to type on this device. Nothing here changes the device: files are only read (a corrupt one is reported,
 * never moved), the change database is opened read-only, and the identity service is probed with an empty enroll
 * request, which it refuses without a trace.
 */
import type { AgentConfig } from "../settings.ts";
import { ParamsFile } from "../identity/params.ts";
import { operatorHints } from "../operator_hints.ts";
import type { Logger } from "../log.ts";
import type { AgentPaths } from "../paths.ts";
import type { Proxies } from "../net/proxy.ts";
import type { ConnectionOptions, NatsConnection } from "nats";
import type { SnapdClient } from "../snapd/client.ts";
import { changeDatabasePath } from "../changes/location.ts";
import type { CheckResult } from "./check_result.ts";
import { checkAssertions, checkChangeDatabase, checkDisk, checkSnapd } from "./device_checks.ts";
import { checkCredentials, checkIdentity, enrollmentFailure, readEnrollment } from "./enrollment_checks.ts";
import { checkBroker, checkNats, checkNatsTransport, checkProxies } from "./network_checks.ts";
import type { Snapctl } from "../adapters/snapctl.ts";
import { checkSetAsideReplies } from "./outbox_check.ts";

export { type CheckResult, formatDoctor } from "./check_result.ts";

/** What the doctor needs. */
export interface DoctorOptions {
  config: AgentConfig;
  paths: AgentPaths;
  env: Record<string, string | undefined>;
  log: Logger;
  /** snapd, with a short time limit (the caller closes it). */
  snapd: SnapdClient;
  /** Now, in ms since the epoch. */
  now: number;
  /** Free bytes for unprivileged users in a directory. */
  freeBytes: (dir: string) => Promise<number>;
  /** Runs `snapctl` (inside a snap). */
  snapctl: Snapctl;
  /** The proxies the agent dials through (see lib/net/agent_proxies.ts). @default none */
  proxies?: Proxies;
  /** Connects to NATS as the agent would (through its proxy when one applies). */
  natsConnect: (options: ConnectionOptions) => Promise<NatsConnection>;
}

/** Runs every check, in order. */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const { config, paths, log, now, snapd } = options;
  const hints = operatorHints(paths);
  const results: CheckResult[] = [];
  results.push(await checkSnapd(snapd, paths.inSnap, options.snapctl, hints));
  results.push(await checkAssertions(snapd));
  const params = await new ParamsFile(paths, log, {
    allowInsecureHttp: config["identity.allow-insecure-http"],
  }).inspect();
  const enrollment = await readEnrollment(paths.credentials);
  const enrolled = enrollment !== undefined && !(enrollment instanceof Error);
  results.push(...await checkProxies(options.proxies));
  results.push(await checkIdentity(params, enrolled, hints, options.proxies));
  results.push(...checkCredentials(enrollment, now, await enrollmentFailure(paths), params, hints));
  if (enrolled) results.push(await checkBroker(enrollment, config, options.proxies));
  const setAside = await checkSetAsideReplies(paths);
  if (setAside) results.push(setAside);
  if (config["nats.enabled"]) {
    results.push(await checkNats(config, hints, options.natsConnect), checkNatsTransport(config));
  }
  results.push(checkChangeDatabase(changeDatabasePath(config, paths, options.env)));
  results.push(await checkDisk(paths.dataDir, options.freeBytes));
  return results;
}
