/**
 * Brings the device to "enrolled": uses the stored enrollment when there is one (no identity call), otherwise
 * waits for the identity URL in `params`, then reads the model and serial assertions from snapd and enrolls,
 * retrying every failure with capped full-jitter backoff and logging each distinct cause once.
 */
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { type BackoffOptions, retry } from "../retry.ts";
import type { SnapdPort } from "../snapd/port.ts";
import type { CredentialsStore } from "./credentials.ts";
import type { Enrollment } from "./enrollment.ts";
import { enrollBody, EnrollmentError, type RequestEnrollment } from "./enroll_request.ts";
import type { ParamsFile } from "./params.ts";
import { errorMessage, saysAlreadyEnrolled } from "../errors.ts";

/** What the enroller needs. */
export interface EnrollerDeps {
  snapd: Pick<SnapdPort, "assertions">;
  params: ParamsFile;
  credentials: CredentialsStore;
  log: Logger;
  /** Time: waits, timeouts and how long things took (the real one is wired in main.ts). */
  clock: Clock;
  backoff?: BackoffOptions;
  /** How often `params` is checked while waiting for a URL, in ms. @default 2000 */
  paramsPollMs?: number;
  /** What an operator types to set the URL here (see operator_hints.ts). */
  setUrlHint: string;
  /** Sends the enroll request to the identity service (through its proxy, when one applies). */
  request: RequestEnrollment;
}

/** The enrollment state machine of the agent. */
export class Enroller {
  readonly #deps: EnrollerDeps;
  readonly #clock: Clock;
  readonly #failures: FailureLog;

  constructor(deps: EnrollerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock;
    this.#failures = new FailureLog(deps.log, "enrollment");
  }

  #phase: "waiting for a URL" | "enrolling" | undefined;

  /** What the enroller is doing: waiting for the identity service URL, or enrolling; undefined before it starts. */
  get phase(): "waiting for a URL" | "enrolling" | undefined {
    return this.#phase;
  }

  /** The cause of the last failed attempt, if the last attempt failed. */
  get lastFailure(): string | undefined {
    return this.#failures.lastCause;
  }

  /** Resolves with the enrollment once there is one; rejects only when `signal` aborts. */
  async ensureEnrolled(signal: AbortSignal): Promise<Enrollment> {
    const { credentials, log } = this.#deps;
    this.#phase = "enrolling";
    const { enrollment, fresh } = await retry(async () => {
      const stored = await credentials.load();
      if (stored) return { enrollment: stored, fresh: false };
      const url = await this.#configuredUrl(signal);
      return { enrollment: await this.#enroll(url, signal), fresh: true };
    }, {
      ...this.#deps.backoff,
      clock: this.#clock,
      signal,
      onRetry: (error, delay) => this.#failures.failed(describe(error), delay),
    });
    this.#failures.succeeded();
    if (!fresh) {
      log.info(`enrolled as device ${enrollment.id}`, {
        organization: enrollment.organization.id,
        source: credentials.path,
      });
      return enrollment;
    }
    await this.#store(enrollment, signal);
    log.info(`enrolled as device ${enrollment.id}`, {
      organization: enrollment.organization.id,
      broker: `${enrollment.credentials.mqttUrl}:${enrollment.credentials.mqttPort}`,
    });
    return enrollment;
  }

  /** The identity service URL, once `params` holds one: an operator sets it, so it is looked for now and then. */
  async #configuredUrl(signal: AbortSignal): Promise<string> {
    const { params, log } = this.#deps;
    let waitingLogged = false;
    for (;;) {
      const settings = await params.read();
      if (settings) {
        this.#phase = "enrolling";
        return settings.url;
      }
      this.#phase = "waiting for a URL";
      if (!waitingLogged) {
        log.info(`not configured: waiting for the identity service URL (${this.#deps.setUrlHint})`, {
          params: params.path,
        });
        waitingLogged = true;
      }
      await this.#clock.sleep(this.#deps.paramsPollMs ?? 2000, signal);
    }
  }

  async #enroll(url: string, signal: AbortSignal): Promise<Enrollment> {
    const { snapd } = this.#deps;
    let body: string;
    try {
      body = enrollBody(await snapd.assertions("model"), await snapd.assertions("serial"));
    } catch (error) {
      if (error instanceof EnrollmentError) throw error;
      throw new EnrollmentError(
        `cannot read the device's assertions from snapd: ${errorMessage(error)}`,
        "no-assertions",
        {
          cause: error,
        },
      );
    }
    return await this.#deps.request(url, body, { signal });
  }

  /**
   * Stores the enrollment, retrying a failed write (e.g. a full disk) rather than enrolling again: the identity
   * service has already marked the device enrolled and would refuse a second enrollment.
   */
  async #store(enrollment: Enrollment, signal: AbortSignal): Promise<void> {
    const failures = new FailureLog(this.#deps.log, "storing the enrollment");
    await retry(() => this.#deps.credentials.save(enrollment), {
      ...this.#deps.backoff,
      clock: this.#clock,
      signal,
      onRetry: (error, delay) => failures.failed(describe(error), delay),
    });
    failures.succeeded();
  }
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!saysAlreadyEnrolled(message)) return message;
  // the identity service answers an enrollment once; this device has no .secret, so that answer never became
  // durable here (a power cut inside the window between the answer and the stored .secret, or a wiped $SNAP_DATA)
  return `the identity service holds an enrollment this device lost (${message}): an operator must reset the ` +
    "device's registration on the identity service (back to waiting); the agent then enrolls by itself";
}
