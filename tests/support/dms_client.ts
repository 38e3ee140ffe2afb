/**
 * A small DMS for tests: connects to the broker with the DMS service's certificate, subscribes to
 * `devices/pub/+` and `devices/health/+` (as the Device Twin service does) and `metrics/+` (as a metrics
 * consumer would), and publishes actions to `devices/sub/<id>` with QoS 1.
 */
import mqtt from "mqtt";
import type { TestCA } from "./pki.ts";
import { DMS_USER } from "./mosquitto.ts";
import { within } from "./wait.ts";

/** A message the DMS received. */
export interface DmsMessage {
  topic: string;
  payload: string;
  /** The payload parsed as JSON, when it is JSON. */
  json?: Record<string, unknown>;
  at: number;
}

/** The DMS test client. */
export class DmsClient {
  readonly messages: DmsMessage[] = [];
  readonly #waiters = new Set<() => void>();
  #counter = 0;
  /** Resolves once connected and subscribed; replaced on every disconnect. */
  #ready: Promise<void> = Promise.resolve();

  private constructor(private readonly client: mqtt.MqttClient) {
    client.on("message", (topic, payload) => {
      const text = payload.toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(text);
      } catch { /* not JSON */ }
      this.messages.push({ topic, payload: text, json, at: Date.now() });
      for (const waiter of this.#waiters) waiter();
    });
  }

  /** Connects and subscribes. */
  /**
   * `qos`: of the subscriptions (the Device Twin's are QoS 1). `persistent`: a persistent session (clean off,
   * one client id), so that replies published while it reconnects wait for it. @default 1, false
   */
  static async connect(
    options: { port: number; ca: TestCA; topics?: string[]; qos?: 0 | 1; persistent?: boolean },
  ): Promise<DmsClient> {
    const qos = options.qos ?? 1;
    const identity = options.ca.issue(DMS_USER);
    // a broker that closes before CONNACK settles no promise of mqtt.js: the wait has its own limit
    const client = await within(
      mqtt.connectAsync({
        protocol: "mqtts",
        host: "localhost",
        port: options.port,
        clientId: `devicetwin-${crypto.randomUUID().slice(0, 8)}`,
        clean: !options.persistent,
        ca: [options.ca.certPem],
        cert: identity.certPem,
        key: identity.keyPem,
        reconnectPeriod: 200,
      }),
      `the DMS's connection to port ${options.port}`,
      30_000,
    );
    const dms = new DmsClient(client);
    const topics = options.topics ?? ["devices/pub/+", "devices/health/+", "metrics/+"];
    await within(client.subscribeAsync(topics, { qos }), "the DMS's subscriptions", 15_000);
    let subscribed = () => {};
    client.on("close", () => (dms.#ready = new Promise((resolve) => (subscribed = resolve))));
    client.on("connect", () => client.subscribeAsync(topics, { qos }).then(() => subscribed()));
    return dms;
  }

  /** The number of messages so far; pass it as `after` to wait for newer ones only. */
  mark(): number {
    return this.messages.length;
  }

  /** Resolves with the first message (after index `after`) accepted by `predicate`. */
  async waitFor(
    predicate: (message: DmsMessage) => boolean,
    options: { after?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<DmsMessage> {
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    for (;;) {
      const found = this.messages.slice(options.after ?? 0).find(predicate);
      if (found) return found;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const seen = this.messages.slice(-5).map((m) => `${m.topic} ${m.payload.slice(0, 200)}`).join("\n");
        throw new Error(`timed out waiting for ${options.what ?? "a message"}; last messages:\n${seen}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, 250));
        const waiters = this.#waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Waits for a health message of `deviceId`. */
  health(deviceId: string, options: { after?: number; timeoutMs?: number } = {}): Promise<DmsMessage> {
    return this.waitFor((m) => m.topic === `devices/health/${deviceId}`, {
      ...options,
      what: `health of ${deviceId}`,
    });
  }

  /** Drops the connection and connects again (a persistent session resumes); resolves once subscribed. */
  async reconnect(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.client.once("close", () => resolve()));
    this.client.stream?.destroy();
    await within(closed, "the DMS's connection to close", 5000);
    await within(this.#ready, "the DMS's reconnection", 30_000);
  }

  /** Resolves once connected and subscribed (after a broker restart, once reconnected). */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Publishes a raw payload to the device's action topic (once connected and subscribed). */
  async send(deviceId: string, payload: string | Uint8Array): Promise<void> {
    await this.#ready;
    await this.client.publishAsync(`devices/sub/${deviceId}`, payload as string, { qos: 1 });
  }

  /** Publishes a raw payload to any topic (e.g. a required-install command). */
  async publish(topic: string, payload: string): Promise<void> {
    await this.#ready;
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Sends an action (a fresh id unless given) and waits for the response with that id. */
  async request(
    deviceId: string,
    request: { action: string; id?: string; snap?: string; data?: string },
    timeoutMs = 15_000,
  ): Promise<Record<string, unknown>> {
    const id = request.id ?? `act-${Date.now()}-${++this.#counter}`;
    const after = this.mark();
    await this.send(deviceId, JSON.stringify({ ...request, id }));
    return await this.response(deviceId, id, { after, timeoutMs });
  }

  /** Waits for the response with action id `id`. */
  async response(
    deviceId: string,
    id: string,
    options: { after?: number; timeoutMs?: number } = {},
  ): Promise<Record<string, unknown>> {
    const message = await this.waitFor(
      (m) => m.topic === `devices/pub/${deviceId}` && m.json?.id === id,
      { ...options, what: `the response to ${id}` },
    );
    return message.json!;
  }

  /** Responses published by `deviceId` so far. */
  responses(deviceId: string): DmsMessage[] {
    return this.messages.filter((m) => m.topic === `devices/pub/${deviceId}`);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
