/**
 * The session's choice of broker and what it says about it: the next target of an attempt (see
 * broker_rotation.ts), the delay before it — none while the round has more addresses, the backoff once it is
 * over — the one line logged for a failed round, the "connected" line, and the watch that tells when the first
 * broker answers again so that the session moves back to it.
 */
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import type { BrokerAddress } from "./broker_address.ts";
import {
  type BrokerCandidate,
  BrokerRotation,
  describeCandidate,
  type ResolveAddresses,
} from "./broker_rotation.ts";

/** Options of {@link BrokerFailover}. */
export interface BrokerFailoverOptions {
  /** The brokers, the identity service's first; called at the first attempt (a bad address fails that attempt). */
  brokers: () => BrokerAddress[];
  resolve?: ResolveAddresses;
  log: Logger;
  /** How the broker is named in a failure before any attempt could pick one (a bad address). */
  label: string;
  /** While on another broker, the first is tried about this often (a random 50–150 %). @default 60000 */
  failbackMs?: number;
  /** @default Math.random */
  random?: () => number;
}

/** What the watch of the first broker needs from the session. */
export interface FirstBrokerWatch {
  clock: Clock;
  signal: AbortSignal;
  /** False once the connection the watch belongs to is gone. */
  stillConnected(): boolean;
  /** A TLS handshake with the broker: undefined when it answered, else why not. */
  probe(broker: BrokerAddress): Promise<Error | undefined>;
}

/** The brokers a session connects to, in order, and the logging of its attempts. */
export class BrokerFailover {
  readonly #options: BrokerFailoverOptions;
  readonly #failures: FailureLog;
  #rotation: BrokerRotation | undefined;
  #current: BrokerCandidate | undefined;
  /** Why each attempt of the current round failed, for the one line logged when the whole round has failed. */
  #roundFailures: string[] = [];

  constructor(options: BrokerFailoverOptions) {
    this.#options = options;
    this.#failures = new FailureLog(options.log, `connecting to broker ${options.label}`);
  }

  /** How the first broker is named before an attempt picked one. */
  get label(): string {
    return this.#options.label;
  }

  /** The target of the current (or last) attempt. */
  get current(): BrokerCandidate | undefined {
    return this.#current;
  }

  /** The cause of the last failure, if the last attempt failed. */
  get lastFailure(): string | undefined {
    return this.#failures.lastCause;
  }

  get #failbackMs(): number {
    return this.#options.failbackMs ?? 60_000;
  }

  /** The target of the next attempt. @throws {TypeError} for a broker address that is not one */
  async next(): Promise<BrokerCandidate> {
    this.#rotation ??= new BrokerRotation(this.#options.brokers(), this.#options.resolve);
    return this.#current = await this.#rotation.next();
  }

  /** After an attempt that failed: no delay while the round has more addresses; undefined: the backoff's. */
  delayAfterAttempt(): number | undefined {
    return this.#rotation && !this.#rotation.roundOver ? 0 : undefined;
  }

  /** After a connection that was up ended (dropped, or left to move back): the first broker first again. */
  restart(): void {
    this.#rotation?.restart();
  }

  /**
   * Logs a failed attempt: within a round that has more addresses to try, at debug; once the round is over, once
   * per distinct cause, with every address's reason when there were several.
   */
  attemptFailed(reason: string, delay: number): void {
    const candidate = this.#current;
    if (!candidate || !this.#rotation) return this.#failures.failed(reason, delay);
    this.#roundFailures.push(`${describeCandidate(candidate)}: ${reason}`);
    if (!this.#rotation.roundOver) {
      this.#options.log.debug(`connecting to broker ${describeCandidate(candidate)} failed: ${reason}`, {
        next: "the next address",
      });
      return;
    }
    const failures = this.#roundFailures;
    this.#roundFailures = [];
    if (failures.length === 1) {
      return this.#failures.failed(reason, delay, `connecting to broker ${candidate.broker.label}`);
    }
    this.#failures.failed(
      failures.join("; "),
      delay,
      `connecting to any of ${failures.length} broker addresses`,
    );
  }

  /** Logs a connection that was up and ended (its reconnect waits `delay`). */
  connectionLost(reason: string, delay: number): void {
    this.#roundFailures = [];
    this.#failures.failed(reason, delay, `connecting to broker ${this.#current?.broker.label}`);
  }

  /** Logs the connection; true when it is not to the first broker (the session then watches the first). */
  connected(clientId: string): boolean {
    const candidate = this.#current!;
    this.#failures.succeeded(`connecting to broker ${candidate.broker.label}`);
    this.#roundFailures = [];
    const elsewhere = candidate.rank > 0;
    this.#options.log.info(`connected to broker ${describeCandidate(candidate)}`, {
      client_id: clientId,
      note: elsewhere
        ? `broker ${this.#rotation!.first.label} did not answer; it is tried again about every ${
          Math.round(this.#failbackMs / 1000)
        } s`
        : undefined,
    });
    return elsewhere;
  }

  /**
   * Tries the first broker about every `failbackMs` while the connection lasts; resolves with the first broker
   * once it answers (the session then leaves the current one cleanly), or undefined when the connection ended or
   * the session stopped first.
   */
  async watchFirst(watch: FirstBrokerWatch): Promise<BrokerAddress | undefined> {
    const first = this.#rotation!.first;
    const random = this.#options.random ?? Math.random;
    while (watch.stillConnected()) {
      try {
        await watch.clock.sleep(this.#failbackMs * (0.5 + random()), watch.signal);
      } catch {
        return undefined; // stopped
      }
      if (!watch.stillConnected()) return undefined;
      const error = await watch.probe(first);
      if (!watch.stillConnected()) return undefined;
      if (!error) {
        this.#options.log.info(`broker ${first.label} answers again: moving back to it`);
        return first;
      }
      this.#options.log.debug(`broker ${first.label} does not answer yet: ${error.message}`);
    }
    return undefined;
  }
}
