/**
 * The device's MQTT session with the DMS broker: mutual TLS (RFC 6066 names, see broker_address.ts), a
 * persistent session (clean = false) so QoS 1 actions sent while the device was offline arrive on reconnect,
 * every subscription renewed on every connect (the Go agent lost them after a reconnect), and reconnects spaced
 * by capped full-jitter backoff; the broker chosen, and moved back to, by broker_failover.ts.
 *
 * Nothing that goes wrong here stops the session: a throw while connecting, a subscription the broker refuses,
 * a message handler that fails — each is logged once per distinct cause and followed by a reconnect after the
 * usual backoff. The session counts as connected only once every subscription was granted, so a device is never
 * "connected but deaf". A message is acknowledged only after its handler succeeded; when the handler fails the
 * acknowledgement is withheld and the connection renewed, so the broker delivers the message again.
 *
 * Each connection attempt uses a fresh mqtt.js client with its own reconnect disabled: the session owns the
 * retry policy, and a publish that was not acknowledged when its connection dropped is rejected (the caller
 * keeps it and publishes it again), never silently replayed by the library.
 */
import type { Socket } from "node:net";
import mqtt from "mqtt";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { Backoff, type BackoffOptions, retry } from "../retry.ts";
import { type BrokerAddress, brokerAddress } from "./broker_address.ts";
import { type ClientOptions, deviceClientOptions } from "./client_options.ts";
import { ConnectionEnded, MovingBack, NotConnectedError } from "./connection_end.ts";
import { BrokerFailover } from "./broker_failover.ts";
import { brokerHandshake } from "./broker_handshake.ts";
import type { BrokerCandidate, ResolveAddresses } from "./broker_rotation.ts";
import { explainConnectionFailure } from "./connection_failure.ts";
import type { BrokerTrust } from "./tls.ts";
import { subscribeAll, type Subscription } from "./subscriptions.ts";
import { asError, errorMessage } from "../errors.ts";

export { type Subscription, SubscriptionRefusedError } from "./subscriptions.ts";
export type { ClientOptions } from "./client_options.ts";
export { NotConnectedError } from "./connection_end.ts";

/** Creates an mqtt.js client (the port tests use to make a connection attempt throw). */
export type ConnectClient = (options: ClientOptions) => mqtt.MqttClient;

/** Options of {@link MqttSession}. */
export interface MqttSessionOptions {
  /** Broker host as the enrollment gives it: a host name, or an IPv4 or IPv6 literal (brackets allowed). */
  host: string;
  /** Broker port (the enrollment gives it as a string). */
  port: number | string;
  /** Brokers tried in order after that one (`mqtt.brokers`), with the same certificate; each verified by its name. */
  moreBrokers?: BrokerAddress[];
  /** Every address of a broker's name. @default resolveAll (the system resolver) */
  resolve?: ResolveAddresses;
  /**
   * While connected to a broker other than the first, the first is tried about this often (a random 50–150 %, so
   * a fleet does not move back in one second); the session moves back once it answers. @default 60000
   */
  failbackMs?: number;
  clientId: string;
  /** PEM client certificate and key. */
  certificate: string;
  privateKey: string;
  trust: BrokerTrust;
  /** Keep-alive, in ms. @default 30000 */
  keepaliveMs?: number;
  subscriptions: Subscription[];
  backoff?: BackoffOptions;
  /**
   * After a connection that was up drops, the first reconnect waits a random delay up to this, in ms, so that a
   * fleet whose broker restarted does not come back in the same second. @default 10000
   */
  reconnectSpreadMs?: number;
  log: Logger;
  /** Time: waits, timeouts and how long things took (the real one is wired in main.ts). */
  clock: Clock;
  /** @default mqtt.connect */
  connect?: ConnectClient;
  /** Opens a tunnel to the broker through a proxy (HTTP CONNECT) when one applies (undefined: go direct). */
  tunnel?: (host: string, port: number) => Promise<Socket | undefined>;
  /**
   * Called for each message (`redelivered`: the broker's DUP flag — it sent this one before, unacknowledged). The
   * broker's acknowledgement (QoS 1) is sent once the returned promise resolves;
   * when it throws or rejects, the message is not acknowledged and the connection is renewed. Keep it short:
   * accept the message, do the work elsewhere.
   */
  onMessage(topic: string, payload: Uint8Array, redelivered: boolean): void | Promise<void>;
  /** Called after each successful connect, once every subscription is in place. */
  onConnect?(): void;
  /** Called when a connection that was up is lost. */
  onDisconnect?(): void;
}

/** The MQTT session; `start()` it once, `stop()` it once. */
export class MqttSession {
  readonly #options: MqttSessionOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #failover: BrokerFailover;
  readonly #stopping = new AbortController();
  readonly #connectClient: ConnectClient;
  #client: mqtt.MqttClient | undefined;
  #connectedSince: number | undefined;
  #pending = new Set<(error: Error) => void>();
  #closed: Promise<void> = Promise.resolve();
  /** Why the current client is being closed on purpose (reported as the cause of the reconnect). */
  #closing: Error | undefined;
  /** When the session last made progress (monotonic ms): a packet received, a connection attempt begun or ended. */
  #lastActivity: number;
  /** Since when (monotonic ms) the session has had no connection, if it has none. */
  #downSince: number | undefined;

  constructor(options: MqttSessionOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#backoff = new Backoff(options.backoff);
    this.#connectClient = options.connect ?? mqtt.connect;
    this.#failover = new BrokerFailover({
      brokers: () => [brokerAddress(options.host, options.port), ...options.moreBrokers ?? []],
      resolve: options.resolve,
      log: options.log,
      label: options.host.includes(":") && !options.host.startsWith("[")
        ? `[${options.host}]:${options.port}`
        : `${options.host}:${options.port}`,
      failbackMs: options.failbackMs,
      random: options.backoff?.random,
    });
    this.#lastActivity = this.#clock.monotonic();
    this.#downSince = this.#lastActivity;
  }

  /** How long the session has been without a connection (since it started, or since it lost it), in ms; 0 if up. */
  get downForMs(): number {
    return this.#downSince === undefined ? 0 : this.#clock.monotonic() - this.#downSince;
  }

  /**
   * How long since the session last made progress, in ms: while connected the broker answers the keep-alive, and
   * while not, attempts follow each other within the backoff — a session idle for longer is wedged.
   */
  get idleMs(): number {
    return this.#clock.monotonic() - this.#lastActivity;
  }

  /** `host:port` of the broker connected to or being tried (at first the enrollment's), as configured. */
  get broker(): string {
    return this.#failover.current?.broker.label ?? this.#failover.label;
  }

  /** True while a connection is up and every subscription is granted. */
  get connected(): boolean {
    return this.#connectedSince !== undefined;
  }

  /** When the current connection came up (ms since the epoch), if connected. */
  get connectedSince(): number | undefined {
    return this.#connectedSince;
  }

  /** Why the last connection attempt failed, if it did. */
  get lastFailure(): string | undefined {
    return this.#failover.lastFailure;
  }

  /** Starts connecting; reconnects until `stop()`. */
  start(): void {
    const random = this.#options.backoff?.random ?? Math.random;
    retry(() => this.#connection(), {
      clock: this.#clock,
      signal: this.#stopping.signal,
      backoff: this.#backoff,
      delayAfter: (error) => {
        if (error instanceof ConnectionEnded && error.wasUp) {
          this.#failover.restart(); // the first broker first again
          if (error.reason instanceof MovingBack) return 0;
          // the first reconnect waits a random spread, so that a fleet whose broker restarted does not come back
          // in the same second
          return random() * (this.#options.reconnectSpreadMs ?? 10_000);
        }
        return this.#failover.delayAfterAttempt(); // the next address at once
      },
      onRetry: (error, delay) => this.#failed(error, delay),
    }).catch(() => {}); // ends only when stopped
  }

  /** Logs a failed attempt or a lost connection (see BrokerFailover); leaving a broker on purpose is no failure. */
  async #failed(error: unknown, delay: number): Promise<void> {
    if (error instanceof ConnectionEnded && error.reason instanceof MovingBack) return;
    const reason = await this.#reason(error);
    if (error instanceof ConnectionEnded && error.wasUp) this.#failover.connectionLost(reason, delay);
    else this.#failover.attemptFailed(reason, delay);
  }

  /**
   * Drops the current connection (if any) and connects again after the usual backoff; `reason` is logged as the
   * cause. For faults the session cannot see itself.
   */
  restart(reason: string): void {
    const client = this.#client;
    if (!client) return;
    this.#closing = new Error(reason);
    client.end(true);
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
      const settle = (error?: Error) => {
        if (!this.#pending.delete(abandon)) return;
        if (error) reject(new NotConnectedError(`publish to ${topic} failed: ${error.message}`, true));
        else resolve();
      };
      try {
        client.publish(topic, payload as string, { qos, retain: false }, settle);
      } catch (error) {
        settle(asError(error));
      }
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

  /**
   * One connection, from the attempt to its end: rejects when it ends — with a {@link ConnectionEnded} saying why
   * and whether it was up — so that the retry loop connects again. Throws when the attempt cannot even start.
   */
  async #connection(): Promise<never> {
    const o = this.#options;
    this.#lastActivity = this.#clock.monotonic();
    const candidate = await this.#failover.next();
    // through a proxy: TLS runs inside the proxy's CONNECT tunnel, with the broker's names verified as directly
    const socket = await o.tunnel?.(candidate.broker.host, candidate.broker.port);
    const client = this.#open(candidate, socket);
    let lastError: Error | undefined;
    let wasConnected = false;
    let resolveClosed!: () => void;
    this.#closed = new Promise((resolve) => (resolveClosed = resolve));
    this.#closing = undefined;
    this.#client = client;
    client.handleMessage = (packet, done) => this.#handle(client, packet, done);
    client.on("connect", () => {
      this.#established(client).then((up) => (wasConnected ||= up));
    });
    client.on("error", (error) => {
      lastError = error;
    });
    client.on("packetreceive", () => {
      this.#lastActivity = this.#clock.monotonic();
    });
    return new Promise((_, reject) => {
      client.on("close", () => {
        if (this.#client !== client) return;
        this.#lastActivity = this.#clock.monotonic();
        this.#client = undefined;
        const wasUp = this.#connectedSince !== undefined;
        this.#connectedSince = undefined;
        if (wasUp) this.#downSince = this.#clock.monotonic();
        for (const abandon of this.#pending) {
          abandon(new NotConnectedError("connection lost before the broker acknowledged", true));
        }
        this.#pending.clear();
        client.end(true);
        resolveClosed();
        const cause = this.#closing ?? lastError;
        if (wasUp) {
          if (this.#stopping.signal.aborted || cause instanceof MovingBack) {
            o.log.info(`disconnected from broker ${this.broker}`, { reason: cause?.message });
          } else {
            o.log.warn(`disconnected from broker ${this.broker}`, {
              reason: cause?.message ?? "connection closed",
            });
          }
          this.#notify("onDisconnect");
        }
        reject(new ConnectionEnded(cause, wasConnected));
      });
    });
  }

  /** A new mqtt.js client for one connection attempt. @throws whatever building or starting it throws */
  #open(candidate: BrokerCandidate, socket: Socket | undefined): mqtt.MqttClient {
    const o = this.#options;
    const address = candidate.broker;
    if (!o.trust.verify) {
      o.log.warn(
        `mqtt.verify=false: connecting to ${address.label} without verifying its certificate (insecure)`,
      );
    }
    const client = this.#connectClient(deviceClientOptions(candidate, o, socket));
    // request/reply traffic: Nagle's algorithm meeting the broker's delayed ACK costs 40 ms per reply
    (client.stream as { setNoDelay?(noDelay: boolean): void } | undefined)?.setNoDelay?.(true);
    return client;
  }

  /** Why a connection attempt failed or a connection ended, in one line (once per distinct cause in the log). */
  #reason(error: unknown): Promise<string> {
    const explain = (cause: Error | undefined) =>
      cause
        ? explainConnectionFailure(cause, {
          broker: this.#failover.current?.broker ?? brokerAddress(this.#options.host, this.#options.port),
          certificate: this.#options.certificate,
          trust: this.#options.trust,
          now: this.#clock.now(),
        })
        : Promise.resolve("connection closed");
    if (!(error instanceof ConnectionEnded)) return explain(asError(error));
    if (error.wasUp && !error.reason) return Promise.resolve("connection closed");
    return explain(error.reason);
  }

  /** After CONNACK: subscribe everything; only then is the session up. Returns whether it came up. */
  async #established(client: mqtt.MqttClient): Promise<boolean> {
    const o = this.#options;
    try {
      await subscribeAll(client, o.subscriptions, o.clientId, o.log);
    } catch (error) {
      if (this.#client !== client) return false;
      this.#closing = asError(error);
      client.end(true);
      return false;
    }
    if (this.#client !== client) return false;
    this.#connectedSince = this.#clock.now();
    this.#downSince = undefined;
    this.#backoff.reset();
    if (this.#failover.connected(o.clientId)) this.#moveBackWhenFirstAnswers(client);
    this.#notify("onConnect");
    return true;
  }

  /** While on another broker: once the first answers a TLS handshake, leaves this one cleanly to go back to it. */
  async #moveBackWhenFirstAnswers(client: mqtt.MqttClient): Promise<void> {
    const o = this.#options;
    const first = await this.#failover.watchFirst({
      clock: this.#clock,
      signal: this.#stopping.signal,
      stillConnected: () => this.#client === client && this.connected,
      probe: async (broker) => {
        const socket = await o.tunnel?.(broker.host, broker.port).catch((error: Error) => error);
        if (socket instanceof Error) return socket;
        const { certificate, privateKey, trust } = o;
        return await brokerHandshake({ broker, certificate, privateKey, trust, socket });
      },
    });
    if (!first || this.#client !== client) return;
    this.#closing = new MovingBack(`moving back to broker ${first.label}`);
    client.end(false);
  }

  /** Hands a message to `onMessage`; acknowledges it only on success. */
  #handle(client: mqtt.MqttClient, packet: mqtt.IPublishPacket, done: (error?: Error) => void): void {
    const { onMessage } = this.#options;
    const failed = (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      const cause = new Error(
        `handling a message on ${packet.topic} failed (${message}); it was not acknowledged and the broker delivers it again after the reconnect`,
      );
      done(cause);
      if (this.#client === client) {
        this.#closing = cause;
        client.end(true);
      }
    };
    try {
      Promise.resolve(onMessage(packet.topic, toBytes(packet.payload), packet.dup === true)).then(
        () => done(),
        failed,
      );
    } catch (error) {
      failed(error);
    }
  }

  /** Calls a callback of the owner; a throw there is logged, never allowed to break the session. */
  #notify(callback: "onConnect" | "onDisconnect"): void {
    try {
      this.#options[callback]?.();
    } catch (error) {
      this.#options.log.error(`${callback} failed: ${errorMessage(error)}`);
    }
  }
}

const toBytes = (payload: string | Uint8Array): Uint8Array =>
  typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
