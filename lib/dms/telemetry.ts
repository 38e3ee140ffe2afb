/**
 * The link's timers: health right after every connect and then every `health.interval`, metrics every
 * `metrics.interval`, both stopped while disconnected. Publishing goes through a port, so the schedule is
 * tested with a fake clock and a fake publisher.
 */
import type { DeviceIdentity, DmsProtocol } from "../dms_protocol/identity.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { Periodic } from "../periodic.ts";
import type { SnapdPort } from "../snapd/port.ts";
import { buildHealth } from "./health.ts";
import { encodeHealth } from "../dms_protocol/messages.ts";
import { errorMessage } from "../errors.ts";

/** Reads the metric lines of a device (Influx line protocol); a source that fails is reported and skipped. */
export type ReadMetrics = (deviceId: string, onError: (error: Error) => void) => Promise<string[]>;

/** Options of {@link Telemetry}. */
export interface TelemetryOptions {
  device: DeviceIdentity;
  protocol: DmsProtocol;
  topics: { health: string; metrics: string };
  /** Publishes a message; resolves once it was acknowledged (QoS 1) or written (QoS 0). */
  publish(topic: string, payload: string, qos: 0 | 1): Promise<void>;
  snapd: Pick<SnapdPort, "snaps">;
  readMetrics: ReadMetrics;
  healthIntervalMs: number;
  metricsIntervalMs: number;
  clock: Clock;
  log: Logger;
}

/** Health and metrics of one enrollment. */
export class Telemetry {
  readonly #options: TelemetryOptions;
  readonly #health: Periodic;
  readonly #metrics: Periodic;
  #lastHealthAt: number | undefined;

  constructor(options: TelemetryOptions) {
    this.#options = options;
    const { clock, log } = options;
    this.#health = new Periodic(() => this.#publishHealth(), {
      name: "publishing health",
      intervalMs: options.healthIntervalMs,
      clock,
      log,
    });
    this.#metrics = new Periodic(() => this.#publishMetrics(), {
      name: "publishing metrics",
      intervalMs: options.metricsIntervalMs,
      clock,
      log,
    });
  }

  /** When the last health message was acknowledged (ms since the epoch). */
  get lastHealthAt(): number | undefined {
    return this.#lastHealthAt;
  }

  /** Connected: health and metrics now, then on their intervals. */
  start(): void {
    this.#health.restart();
    this.#metrics.restart();
  }

  /** Disconnected (or stopping): nothing is published until the next start. */
  stop(): void {
    this.#health.stop();
    this.#metrics.stop();
  }

  async #publishHealth(): Promise<void> {
    const { snapd, device, protocol, clock, log, topics, publish } = this.#options;
    const health = await buildHealth(snapd, device, protocol, new Date(clock.now()), log);
    try {
      await publish(topics.health, encodeHealth(health), 1);
    } catch (error) {
      // the connection dropped under it: the next connect sends health again at once
      return log.debug(`health not sent: ${errorMessage(error)}`);
    }
    this.#lastHealthAt = clock.now();
    log.debug("health sent", { snapListHash: health.snapListHash });
  }

  async #publishMetrics(): Promise<void> {
    const { device, log, topics, publish, readMetrics } = this.#options;
    const lines = await readMetrics(device.id, (error) => log.debug(`metrics: ${error.message}`));
    for (const line of lines) {
      await publish(topics.metrics, line, 0).catch((error) =>
        log.debug(`metrics not sent: ${error.message}`)
      );
    }
  }
}
