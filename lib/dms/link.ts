/**
 * The device's link with its DMS: one broker session and what rides on it. It only routes —
 * - `devices/sub/<id>` payloads to the delivery unit (journal, outbox, recovery, per-snap order);
 * - `devices/actions/<serial>/required-install` to the required-install service;
 * - connects and disconnects to the telemetry timers (health, metrics) and the outbox.
 * The session itself comes from a factory port (`main.ts` hands in the MQTT one), so the link holds no
 * transport code and no business rule of its own.
 */
import type { DatabaseSync } from "node:sqlite";
import type { ActionContext } from "../actions/context.ts";
import { runAction } from "../actions/dispatcher.ts";
import type { Enrollment } from "../identity/enrollment.ts";
import { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import { type DeviceTopics, deviceTopics } from "../dms_protocol/topics.ts";
import { RequiredInstaller } from "./required_install.ts";
import type { BackoffOptions } from "../retry.ts";
import { Delivery } from "./delivery.ts";
import type { ChangeFailure } from "./snap_order.ts";
import { type ReadMetrics, Telemetry } from "./telemetry.ts";

/** What the link needs of a broker session (`MqttSession` is one). */
export interface BrokerSession {
  /** True while connected with every subscription granted. */
  readonly connected: boolean;
  readonly connectedSince: number | undefined;
  /** Why the last connection attempt failed, if it did. */
  readonly lastFailure: string | undefined;
  /** How long since the session last made progress (a packet from the broker, a connection attempt), in ms. */
  readonly idleMs: number;
  /** How long the session has been without a connection, in ms (0 while connected). */
  readonly downForMs: number;
  start(): void;
  stop(): Promise<void>;
  /** Drops the connection and connects again after backoff. */
  restart(reason: string): void;
  /** Resolves once the broker acknowledged (QoS 1) or the message was written (QoS 0). */
  publish(topic: string, payload: string, qos: 0 | 1): Promise<void>;
}

/** What the link asks of a session it opens. */
export interface SessionHandlers {
  subscriptions: { topic: string; qos: 0 | 1 }[];
  /** Runs before the broker's acknowledgement; a throw withholds it. `redelivered`: the broker's DUP flag. */
  onMessage(topic: string, payload: Uint8Array, redelivered: boolean): void | Promise<void>;
  onConnect(): void;
  onDisconnect(): void;
}

/** Opens a session to the enrollment's broker. */
export type OpenSession = (enrollment: Enrollment, handlers: SessionHandlers) => Promise<BrokerSession>;

/** Options of {@link DmsLink}. */
export interface DmsLinkOptions {
  enrollment: Enrollment;
  openSession: OpenSession;
  /** The ports and settings of the actions; `device` and `log` are filled in. */
  actions: Omit<ActionContext, "device" | "log">;
  db: DatabaseSync;
  readMetrics: ReadMetrics;
  healthIntervalMs: number;
  metricsIntervalMs: number;
  backoff: BackoffOptions;
  log: Logger;
  /** Called once an `unregister` reply was acknowledged: clear the enrollment. */
  onUnregister(): Promise<void>;
  /** The largest reply, in bytes (`mqtt.max-reply-bytes`). */
  maxReplyBytes?: number;
  /** The bound of the actions waiting in memory (`actions.max-waiting`, `actions.max-waiting-bytes`). */
  waiting?: { maxActions: number; maxBytes: number };
  /** Bytes of requests and responses the journal and outbox keep at most (`journal.max-bytes`). */
  journalMaxBytes?: number;
}

/** The DMS link of one enrollment. */
export class DmsLink {
  readonly topics: DeviceTopics;
  readonly #options: DmsLinkOptions;
  readonly #delivery: Delivery;
  readonly #telemetry: Telemetry;
  readonly #installer: RequiredInstaller;
  readonly #log: Logger;
  #session: BrokerSession | undefined;

  constructor(options: DmsLinkOptions) {
    const { enrollment, actions, log, db, backoff } = options;
    this.#options = options;
    this.#log = log;
    this.topics = deviceTopics(enrollment.id, enrollment.organization.id, enrollment.device.serial);
    const device = { id: enrollment.id, organizationId: enrollment.organization.id };
    const context: ActionContext = { ...actions, device, log: log.child("actions") };
    const queue = new KeyedQueue();
    const publish = (topic: string, payload: string, qos: 0 | 1) =>
      this.#session
        ? this.#session.publish(topic, payload, qos)
        : Promise.reject(new Error("no session yet"));
    this.#delivery = new Delivery({
      db,
      responseTopic: this.topics.responses,
      queue,
      publish: (topic, payload) => publish(topic, payload, 1),
      run: (request) => runAction(request, context),
      snapd: actions.snapd,
      clock: actions.clock,
      log,
      backoff,
      patienceMs: actions.conflictTimeoutMs,
      onUnregister: options.onUnregister,
      maxReplyBytes: options.maxReplyBytes,
      waiting: options.waiting,
      journalMaxBytes: options.journalMaxBytes,
    });
    this.#telemetry = new Telemetry({
      device,
      protocol: actions.protocol,
      topics: this.topics,
      publish,
      snapd: actions.snapd,
      readMetrics: options.readMetrics,
      healthIntervalMs: options.healthIntervalMs,
      metricsIntervalMs: options.metricsIntervalMs,
      clock: actions.clock,
      log,
    });
    this.#installer = new RequiredInstaller({
      db,
      snapd: actions.snapd,
      queue,
      log: log.child("required-install"),
      clock: actions.clock,
      backoff,
      conflictTimeoutMs: actions.conflictTimeoutMs,
    });
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  /** The broker session (state and failures), once started. */
  get session(): BrokerSession | undefined {
    return this.#session;
  }

  /** When the last health message was acknowledged (ms since the epoch). */
  get lastHealthAt(): number | undefined {
    return this.#telemetry.lastHealthAt;
  }

  /** snapd changes that failed after their action was answered: the count and the last. */
  get changeFailure(): ChangeFailure | undefined {
    return this.#delivery.changeFailure;
  }

  /** Responses waiting for the broker. */
  get outboxDepth(): number {
    return this.#delivery.outboxDepth;
  }

  /** Responses set aside because the broker kept refusing them. */
  get setAsideReplies(): number {
    return this.#delivery.setAsideReplies;
  }

  /** Why the last write of action state failed, while writes fail (a full disk). */
  get storageProblem(): string | undefined {
    return this.#delivery.storageProblem;
  }

  /** Resumes unfinished work, then connects and keeps connecting. */
  async start(): Promise<void> {
    this.#delivery.resume();
    this.#installer.start();
    const { commands, actions } = this.topics;
    this.#session = await this.#options.openSession(this.#options.enrollment, {
      subscriptions: [
        { topic: actions, qos: 1 },
        ...(commands ? [{ topic: commands, qos: 1 as const }] : []),
      ],
      onMessage: (topic, payload, redelivered) => this.#route(topic, payload, redelivered),
      onConnect: () => {
        void this.#delivery.flush();
        this.#telemetry.start();
      },
      onDisconnect: () => this.#telemetry.stop(),
    });
    this.#session.start();
  }

  /** Drops the broker connection and reconnects (a last-resort recovery). */
  restart(reason: string): void {
    this.#session?.restart(reason);
  }

  /** Stops the timers, lets running actions finish briefly, and disconnects. */
  async stop(): Promise<void> {
    this.#telemetry.stop();
    this.#installer.stop();
    await Promise.race([this.#delivery.idle(), this.#options.actions.clock.sleep(5000)]);
    this.#delivery.stop();
    await this.#delivery.flush();
    await this.#session?.stop();
  }

  #route(topic: string, payload: Uint8Array, redelivered: boolean): void | Promise<void> {
    if (topic === this.topics.actions) return this.#delivery.accept(payload, redelivered);
    const command = topic.split("/").slice(3).join("/");
    if (command === "required-install") return this.#installer.receive(payload);
    this.#log.info(`ignoring command "${command}" on ${topic}: not handled by this agent version`);
  }
}
