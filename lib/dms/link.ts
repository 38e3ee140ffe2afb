/**
 * The device's link with its DMS, over one MQTT session: accepts actions from `devices/sub/<id>`, runs them
 * (in order per snap, concurrently across snaps), publishes exactly one response per request with an id on
 * `devices/pub/<id>`, and publishes health (right after every connect, then every `health.interval`) and
 * metrics (same schedule, every `metrics.interval`).
 */
import { type ActionContext, type DmsProtocol } from "../actions/context.ts";
import { runAction } from "../actions/dispatcher.ts";
import type { Clock } from "../clock.ts";
import type { Enrollment } from "../identity/enrollment.ts";
import { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import { MqttSession } from "../mqtt/session.ts";
import type { BrokerTrust } from "../mqtt/tls.ts";
import { type DeviceTopics, deviceTopics } from "../mqtt/topics.ts";
import { Periodic } from "../periodic.ts";
import type { BackoffOptions } from "../retry.ts";
import type { SnapdPort } from "../snapd/client.ts";
import { readMetrics } from "../system/metrics.ts";
import { buildHealth } from "./health.ts";
import { type ActionResponse, decodeActionRequest, encodeActionResponse, encodeHealth } from "./messages.ts";
import { Outbox } from "./outbox.ts";

/** What the link needs. */
export interface DmsLinkOptions {
  enrollment: Enrollment;
  snapd: SnapdPort;
  trust: BrokerTrust;
  protocol: DmsProtocol;
  keepaliveMs: number;
  healthIntervalMs: number;
  metricsIntervalMs: number;
  backoff: BackoffOptions;
  log: Logger;
  clock: Clock;
}

/** The DMS link of one enrollment. */
export class DmsLink {
  readonly topics: DeviceTopics;
  readonly #options: DmsLinkOptions;
  readonly #session: MqttSession;
  readonly #queue = new KeyedQueue();
  readonly #outbox: Outbox;
  readonly #context: ActionContext;
  readonly #health: Periodic;
  readonly #metrics: Periodic;
  readonly #log: Logger;
  #lastHealthAt: number | undefined;

  constructor(options: DmsLinkOptions) {
    const { enrollment, log } = options;
    this.#options = options;
    this.#log = log;
    this.topics = deviceTopics(enrollment.id, enrollment.organization.id, enrollment.device.serial);
    const device = { id: enrollment.id, organizationId: enrollment.organization.id };
    this.#context = { snapd: options.snapd, device, protocol: options.protocol, log: log.child("actions") };
    this.#session = new MqttSession({
      host: enrollment.credentials.mqttUrl,
      port: Number(enrollment.credentials.mqttPort),
      clientId: enrollment.id,
      certificate: enrollment.credentials.certificate,
      privateKey: enrollment.credentials.privateKey,
      trust: options.trust,
      keepaliveMs: options.keepaliveMs,
      subscriptions: [
        { topic: this.topics.actions, qos: 1 },
        ...(this.topics.commands ? [{ topic: this.topics.commands, qos: 1 as const }] : []),
      ],
      backoff: options.backoff,
      log: log.child("mqtt"),
      clock: options.clock,
      onMessage: (topic, payload) => this.#onMessage(topic, payload),
      onConnect: () => this.#onConnect(),
      onDisconnect: () => {
        this.#health.stop();
        this.#metrics.stop();
      },
    });
    this.#outbox = new Outbox(
      (entry) => this.#session.publish(entry.topic, entry.payload, 1),
      log.child("outbox"),
    );
    this.#health = new Periodic(options.healthIntervalMs, () => this.#publishHealth(), options.clock);
    this.#metrics = new Periodic(options.metricsIntervalMs, () => this.#publishMetrics(), options.clock);
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#session.connected;
  }

  /** The MQTT session (state and failures). */
  get session(): MqttSession {
    return this.#session;
  }

  /** When the last health message was acknowledged (ms since the epoch). */
  get lastHealthAt(): number | undefined {
    return this.#lastHealthAt;
  }

  /** Responses waiting for the broker. */
  get outboxDepth(): number {
    return this.#outbox.depth;
  }

  /** Connects and keeps connecting. */
  start(): void {
    this.#session.start();
  }

  /** Stops the schedules, lets running actions finish briefly, and disconnects. */
  async stop(): Promise<void> {
    this.#health.stop();
    this.#metrics.stop();
    await Promise.race([this.#queue.idle(), this.#options.clock.sleep(5000)]);
    await this.#outbox.flush();
    await this.#session.stop();
  }

  #onConnect(): void {
    void this.#outbox.flush();
    this.#health.restart();
    this.#metrics.restart();
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    if (topic === this.topics.actions) return this.#accept(payload);
    this.#log.info(`ignoring a message on ${topic}: not handled by this agent version`, {
      bytes: payload.length,
    });
  }

  #accept(payload: Uint8Array): void {
    const decoded = decodeActionRequest(payload);
    switch (decoded.kind) {
      case "unanswerable":
        this.#log.warn(`dropped an action request that cannot be answered: ${decoded.error}`, {
          bytes: payload.length,
        });
        return;
      case "invalid":
        this.#log.warn(`rejected action request ${decoded.id}: ${decoded.error}`);
        this.#reply({ action: decoded.action, id: decoded.id, success: false, message: decoded.error });
        return;
      case "request": {
        const { request } = decoded;
        this.#log.info(`action ${request.action} requested`, {
          id: request.id,
          snap: request.snap || undefined,
        });
        this.#queue.run(request.snap, () => runAction(request, this.#context)).then((response) =>
          this.#reply(response)
        );
      }
    }
  }

  #reply(response: ActionResponse): void {
    this.#log.info(`action ${response.action} ${response.success ? "succeeded" : "failed"}`, {
      id: response.id,
      message: response.success ? undefined : response.message,
    });
    this.#outbox.add({ topic: this.topics.responses, payload: encodeActionResponse(response) });
  }

  async #publishHealth(): Promise<void> {
    const { snapd, protocol, clock } = this.#options;
    const health = await buildHealth(snapd, this.#context.device, protocol, new Date(clock.now()), this.#log);
    try {
      await this.#session.publish(this.topics.health, encodeHealth(health), 1);
      this.#lastHealthAt = clock.now();
      this.#log.debug("health sent", { snapListHash: health.snapListHash });
    } catch (error) {
      this.#log.debug(`health not sent: ${(error as Error).message}`);
    }
  }

  async #publishMetrics(): Promise<void> {
    const lines = await readMetrics(
      this.#context.device.id,
      (error) => this.#log.debug(`metrics: ${error.message}`),
    );
    for (const line of lines) {
      await this.#session.publish(this.topics.metrics, line, 0).catch(() => {});
    }
  }
}
