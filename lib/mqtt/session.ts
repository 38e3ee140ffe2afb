/**
 * The device's MQTT session with the DMS broker: mutual TLS, a persistent session (clean = false) so QoS 1
 * actions sent while the device was offline arrive on reconnect, every subscription renewed on every connect
 * (the Go agent lost them after a reconnect), and reconnects spaced by capped full-jitter backoff.
 *
 * Each connection attempt uses a fresh mqtt.js client with its own reconnect disabled: the session owns the
 * retry policy, and a publish that was not acknowledged when its connection dropped is rejected (the caller
 * keeps it and publishes it again), never silently replayed by the library.
 */
import mqtt from "mqtt";
import { type Clock, systemClock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { Backoff, type BackoffOptions } from "../retry.ts";
import {
  type BrokerTrust,
  explainVerificationFailure,
  isBrokerVerificationError,
  isClientCertificateRejected,
} from "./tls.ts";

/** A topic filter to subscribe on every connect. */
export interface Subscription {
  topic: string;
  qos: 0 | 1;
}

/** Options of {@link MqttSession}. */
export interface MqttSessionOptions {
  /** Broker host name (also the TLS server name). */
  host: string;
  port: number;
  clientId: string;
  /** PEM client certificate and key. */
  certificate: string;
  privateKey: string;
  trust: BrokerTrust;
  /** Keep-alive, in ms. @default 30000 */
  keepaliveMs?: number;
  subscriptions: Subscription[];
  backoff?: BackoffOptions;
  log: Logger;
  /** @default systemClock */
  clock?: Clock;
  /**
   * Called for each message. The broker's acknowledgement (QoS 1) is sent once the returned promise settles, so
   * keep it short: accept the message, do the work elsewhere.
   */
  onMessage(topic: string, payload: Uint8Array): void | Promise<void>;
  /** Called after each successful connect, once the subscriptions are in place. */
  onConnect?(): void;
  /** Called when a connection is lost. */
  onDisconnect?(): void;
}

/** A publish that failed because the session is not connected or the connection dropped. */
export class NotConnectedError extends Error {
  override name = "NotConnectedError";
}

/** The MQTT session; `start()` it once, `stop()` it once. */
export class MqttSession {
  readonly #options: MqttSessionOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #failures: FailureLog;
  readonly #stopping = new AbortController();
  #client: mqtt.MqttClient | undefined;
  #connectedSince: number | undefined;
  #pending = new Set<(error: Error) => void>();
  #closed: Promise<void> = Promise.resolve();

  constructor(options: MqttSessionOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new Backoff(options.backoff);
    this.#failures = new FailureLog(options.log, `connecting to broker ${this.broker}`);
  }

  /** `host:port` of the broker. */
  get broker(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }

  /** True while a connection is up (CONNACK received). */
  get connected(): boolean {
    return this.#connectedSince !== undefined;
  }

  /** When the current connection came up (ms since the epoch), if connected. */
  get connectedSince(): number | undefined {
    return this.#connectedSince;
  }

  /** Why the last connection attempt failed, if it did. */
  get lastFailure(): string | undefined {
    return this.#failures.lastCause;
  }

  /** Starts connecting; reconnects until `stop()`. */
  start(): void {
    this.#connect();
  }

  /**
   * Publishes a message; resolves when the broker acknowledged it (QoS 1) or it was written (QoS 0).
   * @throws {NotConnectedError} when not connected, or when the connection dropped before the acknowledgement.
   */
  publish(topic: string, payload: string | Uint8Array, qos: 0 | 1): Promise<void> {
    const client = this.#client;
    if (!client || !this.connected) {
      return Promise.reject(new NotConnectedError("not connected to the broker"));
    }
    return new Promise((resolve, reject) => {
      const abandon = (error: Error) => reject(error);
      this.#pending.add(abandon);
      client.publish(topic, payload as string, { qos, retain: false }, (error) => {
        if (!this.#pending.delete(abandon)) return;
        if (error) reject(new NotConnectedError(`publish to ${topic} failed: ${error.message}`));
        else resolve();
      });
    });
  }

  /** Disconnects cleanly (MQTT DISCONNECT) and stops reconnecting. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    const client = this.#client;
    if (client) {
      await Promise.race([
        client.endAsync(false).catch(() => {}),
        this.#clock.sleep(2000).then(() => client.endAsync(true).catch(() => {})),
      ]);
    }
    await this.#closed;
  }

  #connect(): void {
    if (this.#stopping.signal.aborted) return;
    const o = this.#options;
    if (!o.trust.verify) {
      o.log.warn(
        `mqtt.verify=false: connecting to ${this.broker} without verifying its certificate (insecure)`,
      );
    }
    let lastError: Error | undefined;
    let wasConnected = false;
    let resolveClosed!: () => void;
    this.#closed = new Promise((resolve) => (resolveClosed = resolve));
    const client = mqtt.connect({
      protocol: "mqtts",
      host: o.host,
      port: o.port,
      servername: o.host,
      clientId: o.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: Math.max(1, Math.round((o.keepaliveMs ?? 30_000) / 1000)),
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      resubscribe: false,
      queueQoSZero: false,
      cert: o.certificate,
      key: o.privateKey,
      ca: o.trust.ca,
      rejectUnauthorized: o.trust.verify,
    });
    this.#client = client;
    client.handleMessage = (packet, done) => {
      Promise.resolve()
        .then(() => o.onMessage(packet.topic, toBytes(packet.payload)))
        .catch((error) =>
          o.log.error(`handling a message on ${packet.topic} failed: ${(error as Error).message}`)
        )
        .finally(() => done());
    };
    client.on("connect", () => {
      wasConnected = true;
      this.#connectedSince = this.#clock.now();
      this.#backoff.reset();
      this.#failures.succeeded();
      o.log.info(`connected to broker ${this.broker}`, { client_id: o.clientId });
      this.#subscribe(client).then(() => o.onConnect?.());
    });
    client.on("error", (error) => {
      lastError = error;
    });
    client.on("close", () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#connectedSince = undefined;
      for (const abandon of this.#pending) {
        abandon(new NotConnectedError("connection lost before the broker acknowledged"));
      }
      this.#pending.clear();
      client.end(true);
      resolveClosed();
      if (wasConnected) {
        if (this.#stopping.signal.aborted) o.log.info(`disconnected from broker ${this.broker}`);
        else {o.log.warn(`disconnected from broker ${this.broker}`, {
            reason: lastError?.message ?? "connection closed",
          });}
        o.onDisconnect?.();
      }
      if (this.#stopping.signal.aborted) return;
      const delay = this.#backoff.next();
      this.#failures.failed(this.#describe(lastError), delay);
      this.#clock.sleep(delay, this.#stopping.signal).then(() => this.#connect(), () => {});
    });
  }

  async #subscribe(client: mqtt.MqttClient): Promise<void> {
    const { subscriptions, log } = this.#options;
    try {
      const granted = await client.subscribeAsync(
        Object.fromEntries(subscriptions.map(({ topic, qos }) => [topic, { qos }])),
      );
      for (const grant of granted) {
        if (grant.qos === 128) {
          log.error(`the broker refused the subscription to ${grant.topic} (check its ACL)`);
        } else log.debug(`subscribed to ${grant.topic}`, { qos: grant.qos });
      }
    } catch (error) {
      log.warn(`subscribing failed: ${(error as Error).message}`);
    }
  }

  #describe(error: Error | undefined): string {
    if (!error) return "connection closed";
    if (isBrokerVerificationError(error)) {
      return explainVerificationFailure(error, this.broker, this.#options.trust);
    }
    if (isClientCertificateRejected(error)) {
      return `the broker refused the device certificate (${error.message}); the enrollment may have been revoked`;
    }
    return error.message;
  }
}

function toBytes(payload: string | Uint8Array): Uint8Array {
  return typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
}
