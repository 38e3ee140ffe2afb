/**
 * Brings the device to "enrolled": uses the stored enrollment when there is one (no identity call), otherwise
 * waits for the identity URL in `params`, then reads the model and serial assertions from snapd and enrolls,
 * retrying every failure with capped full-jitter backoff and logging each distinct cause once.
 */
import { type Clock, systemClock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { Backoff, type BackoffOptions } from "../retry.ts";
import type { SnapdPort } from "../snapd/port.ts";
import type { CredentialsStore } from "./credentials.ts";
import type { Enrollment } from "./enrollment.ts";
import { enrollBody, EnrollmentError, requestEnrollment } from "./identity_client.ts";
import type { ParamsFile } from "./params.ts";

/** What the enroller needs. */
export interface EnrollerDeps {
  snapd: Pick<SnapdPort, "assertions">;
  params: ParamsFile;
  credentials: CredentialsStore;
  log: Logger;
  /** @default systemClock */
  clock?: Clock;
  backoff?: BackoffOptions;
  /** How often `params` is checked while waiting for a URL, in ms. @default 2000 */
  paramsPollMs?: number;
  /** What an operator types to set the URL here (see operator_hints.ts). */
  setUrlHint: string;
}

/** The enrollment state machine of the agent. */
export class Enroller {
  readonly #deps: EnrollerDeps;
  readonly #clock: Clock;
  readonly #failures: FailureLog;

  constructor(deps: EnrollerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#failures = new FailureLog(deps.log, "enrollment");
  }

  /** The cause of the last failed attempt, if the last attempt failed. */
  get lastFailure(): string | undefined {
    return this.#failures.lastCause;
  }

  /** Resolves with the enrollment once there is one; rejects only when `signal` aborts. */
  async ensureEnrolled(signal: AbortSignal): Promise<Enrollment> {
    const { credentials, params, log } = this.#deps;
    const backoff = new Backoff(this.#deps.backoff);
    let waitingLogged = false;
    for (;;) {
      signal.throwIfAborted();
      const stored = await credentials.load();
      if (stored) {
        log.info(`enrolled as device ${stored.id}`, {
          organization: stored.organization.id,
          source: credentials.path,
        });
        return stored;
      }
      const settings = await params.read();
      if (!settings) {
        if (!waitingLogged) {
          log.info(
            `not configured: waiting for the identity service URL (${this.#deps.setUrlHint})`,
            { params: params.path },
          );
          waitingLogged = true;
        }
        await this.#clock.sleep(this.#deps.paramsPollMs ?? 2000, signal);
        continue;
      }
      waitingLogged = false;
      let enrollment: Enrollment;
      try {
        enrollment = await this.#enroll(settings.url, signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const delay = backoff.next();
        this.#failures.failed(describe(error), delay);
        await this.#clock.sleep(delay, signal);
        continue;
      }
      this.#failures.succeeded();
      await this.#store(enrollment, signal);
      log.info(`enrolled as device ${enrollment.id}`, {
        organization: enrollment.organization.id,
        broker: `${enrollment.credentials.mqttUrl}:${enrollment.credentials.mqttPort}`,
      });
      return enrollment;
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
        `cannot read the device's assertions from snapd: ${(error as Error).message}`,
        "no-assertions",
        {
          cause: error,
        },
      );
    }
    return await requestEnrollment(url, body, { signal });
  }

  /**
   * Stores the enrollment, retrying a failed write (e.g. a full disk) rather than enrolling again: the identity
   * service has already marked the device enrolled and would refuse a second enrollment.
   */
  async #store(enrollment: Enrollment, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#deps.backoff);
    const failures = new FailureLog(this.#deps.log, "storing the enrollment");
    for (;;) {
      try {
        await this.#deps.credentials.save(enrollment);
        failures.succeeded();
        return;
      } catch (error) {
        const delay = backoff.next();
        failures.failed((error as Error).message, delay);
        await this.#clock.sleep(delay, signal);
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
