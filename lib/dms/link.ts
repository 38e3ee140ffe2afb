/**
 * The device's link with its DMS, over one MQTT session:
 * - accepts actions from `devices/sub/<id>` into the journal (sqlite) before the broker's acknowledgement, runs
 *   them (in order per snap, concurrently across snaps), and publishes exactly one response per id through the
 *   persistent outbox; a redelivered id gets its stored response; after a restart, unfinished actions resume
 *   (an action that had started a snapd change is answered with that change instead of running twice);
 * - hands `devices/actions/<serial>/required-install` to the required-install service;
 * - publishes health (right after every connect, then every `health.interval`) and metrics.
 */
import type { DatabaseSync } from "node:sqlite";
import type { ActionContext } from "../actions/context.ts";
import { CHANGE_ACTIONS, runAction } from "../actions/dispatcher.ts";
import type { Clock } from "../clock.ts";
import type { Enrollment } from "../identity/enrollment.ts";
import { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import { MqttSession } from "../mqtt/session.ts";
import type { BrokerTrust } from "../mqtt/tls.ts";
import { type DeviceTopics, deviceTopics } from "../mqtt/topics.ts";
import { Periodic } from "../periodic.ts";
import { RequiredInstaller } from "../required_install.ts";
import type { BackoffOptions } from "../retry.ts";
import { readMetrics } from "../system/metrics.ts";
import { buildHealth } from "./health.ts";
import { ActionJournal } from "./journal.ts";
import {
  type ActionRequest,
  type ActionResponse,
  decodeActionRequest,
  encodeActionResponse,
  encodeHealth,
} from "./messages.ts";
import { Outbox } from "./outbox.ts";
import { findStartedChange } from "./recovery.ts";

/** What the link needs. */
export interface DmsLinkOptions {
  enrollment: Enrollment;
  /** The ports and settings of the actions; `device` is filled in from the enrollment. */
  actions: Omit<ActionContext, "device" | "log">;
  db: DatabaseSync;
  trust: BrokerTrust;
  keepaliveMs: number;
  healthIntervalMs: number;
  metricsIntervalMs: number;
  backoff: BackoffOptions;
  log: Logger;
  clock: Clock;
  /** Called once an `unregister` reply was acknowledged: clear the enrollment. */
  onUnregister(): Promise<void>;
}

/** The DMS link of one enrollment. */
export class DmsLink {
  readonly topics: DeviceTopics;
  readonly #options: DmsLinkOptions;
  readonly #session: MqttSession;
  readonly #queue = new KeyedQueue();
  readonly #journal: ActionJournal;
  readonly #outbox: Outbox;
  readonly #context: ActionContext;
  readonly #installer: RequiredInstaller;
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
    this.#context = { ...options.actions, device, log: log.child("actions") };
    this.#journal = new ActionJournal(options.db);
    this.#installer = new RequiredInstaller({
      db: options.db,
      snapd: options.actions.snapd,
      queue: this.#queue,
      log: log.child("required-install"),
      clock: options.clock,
      backoff: options.backoff,
      conflictTimeoutMs: options.actions.conflictTimeoutMs,
    });
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
      options.db,
      (entry) => this.#session.publish(entry.topic, entry.payload, 1),
      log.child("outbox"),
    );
    this.#health = new Periodic(() => this.#publishHealth(), {
      name: "publishing health",
      intervalMs: options.healthIntervalMs,
      clock: options.clock,
      log,
    });
    this.#metrics = new Periodic(() => this.#publishMetrics(), {
      name: "publishing metrics",
      intervalMs: options.metricsIntervalMs,
      clock: options.clock,
      log,
    });
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

  /** Resumes unfinished work, then connects and keeps connecting. */
  start(): void {
    for (const entry of this.#journal.unfinished()) {
      this.#log.info(`resuming action ${entry.request.action} accepted before the restart`, {
        id: entry.request.id,
      });
      this.#schedule(entry.request, entry.state === "started" ? entry.startedAt : undefined);
    }
    this.#installer.start();
    this.#session.start();
  }

  /** Stops the schedules, lets running actions finish briefly, and disconnects. */
  async stop(): Promise<void> {
    this.#health.stop();
    this.#metrics.stop();
    this.#installer.stop();
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
    const command = topic.split("/").slice(3).join("/");
    if (command === "required-install") return this.#installer.receive(payload);
    this.#log.info(`ignoring command "${command}" on ${topic}: not handled by this agent version`);
  }

  /** Runs synchronously before the broker's acknowledgement: the request is in the journal once acknowledged. */
  #accept(payload: Uint8Array): void {
    const decoded = decodeActionRequest(payload);
    const now = this.#options.clock.now();
    switch (decoded.kind) {
      case "unanswerable":
        this.#log.warn(`dropped an action request that cannot be answered: ${decoded.error}`, {
          bytes: payload.length,
        });
        return;
      case "invalid": {
        this.#log.warn(`rejected action request ${decoded.id}: ${decoded.error}`);
        const request = { id: decoded.id, action: decoded.action, snap: "", data: "" };
        if (this.#journal.accept(request, now).fresh) {
          this.#complete({ action: decoded.action, id: decoded.id, success: false, message: decoded.error });
        }
        return;
      }
      case "request": {
        const { request } = decoded;
        const accepted = this.#journal.accept(request, now);
        if (accepted.fresh) {
          this.#log.info(`action ${request.action} requested`, {
            id: request.id,
            snap: request.snap || undefined,
          });
          this.#schedule(request);
        } else if (accepted.entry.response) {
          this.#log.info(`action ${request.id} was already answered: sending the stored response again`);
          this.#outbox.add(this.topics.responses, accepted.entry.response);
          void this.#outbox.flush();
        } else {
          this.#log.info(`action ${request.id} is already in progress: ignoring the redelivery`);
        }
      }
    }
  }

  /** Queues a request behind the others of its snap; `startedAt` marks one interrupted by a restart. */
  #schedule(request: ActionRequest, startedAt?: number): void {
    this.#queue.run(request.snap, async () => {
      if (startedAt !== undefined && CHANGE_ACTIONS.has(request.action)) {
        const change = await findStartedChange(this.#context.snapd, request.snap, startedAt).catch(() =>
          undefined
        );
        if (change) {
          this.#log.info(
            `action ${request.id} had started change ${change} before the restart: answering with it`,
          );
          return this.#complete({ action: request.action, id: request.id, success: true, result: change });
        }
      }
      if (CHANGE_ACTIONS.has(request.action)) {
        this.#journal.markStarted(request.id, this.#options.clock.now());
      }
      const reply = await runAction(request, this.#context);
      const seq = this.#complete(reply.response);
      if (reply.afterReply === "unregister" && seq !== undefined) {
        await this.#outbox.acknowledged(seq);
        this.#log.info("unregister: reply acknowledged, clearing the enrollment");
        await this.#options.onUnregister();
      }
    }).catch((error) =>
      this.#log.error(`action ${request.id} could not be completed: ${(error as Error).message}`)
    );
  }

  /** Stores the response with its outbox entry and publishes; returns the outbox sequence number. */
  #complete(response: ActionResponse): number | undefined {
    this.#log.info(`action ${response.action} ${response.success ? "succeeded" : "failed"}`, {
      id: response.id,
      message: response.success ? undefined : response.message,
    });
    this.#journal.complete(response.id, encodeActionResponse(response), this.topics.responses);
    const seq = this.#outbox.seqOf(response.id);
    void this.#outbox.flush();
    return seq;
  }

  async #publishHealth(): Promise<void> {
    const { clock } = this.#options;
    const health = await buildHealth(
      this.#context.snapd,
      this.#context.device,
      this.#context.protocol,
      new Date(clock.now()),
      this.#log,
    );
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
