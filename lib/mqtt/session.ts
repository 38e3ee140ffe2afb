/**
 * The device's MQTT session with the DMS broker: mutual TLS (RFC 6066 names, see broker_address.ts), a
 * persistent session (clean = false) so QoS 1 actions sent while the device was offline arrive on reconnect,
 * every subscription renewed on every connect (the Go agent lost them after a reconnect), and reconnects spaced
 * by capped full-jitter backoff.
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
import type { ConnectionOptions } from "node:tls";
import mqtt from "mqtt";
import { type Clock, systemClock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { Backoff, type BackoffOptions, retry } from "../retry.ts";
import { type BrokerAddress, brokerAddress, brokerTlsIdentity } from "./broker_address.ts";
import { brokerHandshake } from "./broker_handshake.ts";
import {
  type BrokerCandidate,
  BrokerRotation,
  describeCandidate,
  type ResolveAddresses,
} from "./broker_rotation.ts";
import { explainConnectionFailure } from "./connection_failure.ts";
import type { BrokerTrust } from "./tls.ts";

/** A topic filter to subscribe on every connect. */
export interface Subscription {
  topic: string;
  qos: 0 | 1;
}

/** The client options: mqtt.js hands the TLS ones through to `tls.connect`. */
export type ClientOptions = mqtt.IClientOptions & Pick<ConnectionOptions, "checkServerIdentity" | "socket">;

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
  /** @default systemClock */
  clock?: Clock;
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

/** A publish that failed because the session is not connected or the connection dropped. */
export class NotConnectedError extends Error {
  override name = "NotConnectedError";
}

/** The broker refused one or more subscriptions (SUBACK 0x80). */
export class SubscriptionRefusedError extends Error {
  override name = "SubscriptionRefusedError";
}

/** The session left a broker on purpose, to move back to the first. */
class MovingBack extends Error {
  override name = "MovingBack";
}

/** A connection ended: why (when known) and whether it had been up. */
class ConnectionEnded extends Error {
  override name = "ConnectionEnded";

  constructor(readonly reason: Error | undefined, readonly wasUp: boolean) {
    super(reason?.message ?? "connection closed", { cause: reason });
  }
}

/** The MQTT session; `start()` it once, `stop()` it once. */
export class MqttSession {
  readonly #options: MqttSessionOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #failures: FailureLog;
  readonly #stopping = new AbortController();
  readonly #connectClient: ConnectClient;
  /** Built at the first attempt, so that a bad broker address is a failed attempt, reported and retried. */
  #rotation: BrokerRotation | undefined;
  /** The target of the current (or last) attempt. */
  #candidate: BrokerCandidate | undefined;
  /** Why each attempt of the current round failed, for the one line logged when the whole round has failed. */
  #roundFailures: string[] = [];
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
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new Backoff(options.backoff);
    this.#connectClient = options.connect ?? mqtt.connect;
    this.#failures = new FailureLog(options.log, `connecting to broker ${this.broker}`);
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
    if (this.#candidate) return this.#candidate.broker.label;
    const { host, port } = this.#options;
    return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
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
    return this.#failures.lastCause;
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
          this.#rotation?.restart(); // the first broker first again
          if (error.reason instanceof MovingBack) return 0;
          // the first reconnect waits a random spread, so that a fleet whose broker restarted does not come back
          // in the same second
          return random() * (this.#options.reconnectSpreadMs ?? 10_000);
        }
        return this.#rotation && !this.#rotation.roundOver ? 0 : undefined; // the next address at once
      },
      onRetry: (error, delay) => this.#failed(error, delay),
    }).catch(() => {}); // ends only when stopped
  }

  /**
   * Logs a failed attempt: within a round that has more addresses to try, at debug; once the round is over, once
   * per distinct cause, with every address's reason when there were several.
   */
  async #failed(error: unknown, delay: number): Promise<void> {
    if (error instanceof ConnectionEnded && error.reason instanceof MovingBack) return; // on purpose
    const reason = await this.#reason(error);
    const candidate = this.#candidate;
    const rotation = this.#rotation;
    if (!candidate || !rotation || (error instanceof ConnectionEnded && error.wasUp)) {
      this.#roundFailures = [];
      return this.#failures.failed(reason, delay, `connecting to broker ${this.broker}`);
    }
    this.#roundFailures.push(`${describeCandidate(candidate)}: ${reason}`);
    if (!rotation.roundOver) {
      this.#options.log.debug(`connecting to broker ${describeCandidate(candidate)} failed: ${reason}`, {
        next: "the next address",
      });
      return;
    }
    const several = this.#roundFailures.length > 1;
    const failures = this.#roundFailures;
    this.#roundFailures = [];
    if (!several) {
      return this.#failures.failed(reason, delay, `connecting to broker ${candidate.broker.label}`);
    }
    this.#failures.failed(
      failures.join("; "),
      delay,
      `connecting to any of ${failures.length} broker addresses`,
    );
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
        if (error) reject(new NotConnectedError(`publish to ${topic} failed: ${error.message}`));
        else resolve();
      };
      try {
        client.publish(topic, payload as string, { qos, retain: false }, settle);
      } catch (error) {
        settle(error as Error);
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
    this.#rotation ??= new BrokerRotation([brokerAddress(o.host, o.port), ...o.moreBrokers ?? []], o.resolve);
    const candidate = this.#candidate = await this.#rotation.next();
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
          abandon(new NotConnectedError("connection lost before the broker acknowledged"));
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
    const identity = brokerTlsIdentity(address);
    if (!o.trust.verify) {
      o.log.warn(
        `mqtt.verify=false: connecting to ${address.label} without verifying its certificate (insecure)`,
      );
    }
    const client = this.#connectClient({
      protocol: "mqtts",
      host: candidate.dial,
      port: address.port,
      servername: identity.servername,
      checkServerIdentity: identity.checkServerIdentity,
      clientId: o.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: Math.max(1, Math.round((o.keepaliveMs ?? 30_000) / 1000)),
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet's number cache is 65,536 two-byte Buffers (about 8 MB of heap) to save an allocation per
      // packet id: not worth it at a device's message rate
      writeCache: false,
      cert: o.certificate,
      key: o.privateKey,
      ca: o.trust.ca,
      rejectUnauthorized: o.trust.verify,
      ...(socket ? { socket } : {}),
    });
    // request/reply traffic: Nagle's algorithm meeting the broker's delayed ACK costs 40 ms per reply
    (client.stream as { setNoDelay?(noDelay: boolean): void } | undefined)?.setNoDelay?.(true);
    return client;
  }

  /** Why a connection attempt failed or a connection ended, in one line (once per distinct cause in the log). */
  #reason(error: unknown): Promise<string> {
    const explain = (cause: Error | undefined) =>
      cause
        ? explainConnectionFailure(cause, {
          broker: this.#candidate?.broker ?? brokerAddress(this.#options.host, this.#options.port),
          certificate: this.#options.certificate,
          trust: this.#options.trust,
          now: this.#clock.now(),
        })
        : Promise.resolve("connection closed");
    if (!(error instanceof ConnectionEnded)) return explain(error as Error);
    if (error.wasUp && !error.reason) return Promise.resolve("connection closed");
    return explain(error.reason);
  }

  /** After CONNACK: subscribe everything; only then is the session up. Returns whether it came up. */
  async #established(client: mqtt.MqttClient): Promise<boolean> {
    const o = this.#options;
    try {
      await this.#subscribe(client);
    } catch (error) {
      if (this.#client !== client) return false;
      this.#closing = error as Error;
      client.end(true);
      return false;
    }
    if (this.#client !== client) return false;
    this.#connectedSince = this.#clock.now();
    this.#downSince = undefined;
    this.#backoff.reset();
    const candidate = this.#candidate!;
    this.#failures.succeeded(`connecting to broker ${candidate.broker.label}`);
    this.#roundFailures = [];
    const first = this.#rotation!.first;
    if (candidate.rank === 0) {
      o.log.info(`connected to broker ${describeCandidate(candidate)}`, { client_id: o.clientId });
    } else {
      o.log.info(`connected to broker ${describeCandidate(candidate)}`, {
        client_id: o.clientId,
        note: `broker ${first.label} did not answer; it is tried again about every ${
          Math.round(this.#failbackMs / 1000)
        } s`,
      });
      this.#moveBackWhenFirstAnswers(client, first);
    }
    this.#notify("onConnect");
    return true;
  }

  get #failbackMs(): number {
    return this.#options.failbackMs ?? 60_000;
  }

  /**
   * While on another broker: tries the first about every `failbackMs` (a TLS handshake with this device's
   * certificate, verified), and once it answers, leaves the current one cleanly to connect to it again.
   */
  async #moveBackWhenFirstAnswers(client: mqtt.MqttClient, first: BrokerAddress): Promise<void> {
    const o = this.#options;
    const random = o.backoff?.random ?? Math.random;
    while (this.#client === client) {
      try {
        await this.#clock.sleep(this.#failbackMs * (0.5 + random()), this.#stopping.signal);
      } catch {
        return; // stopped
      }
      if (this.#client !== client || !this.connected) return;
      const socket = await o.tunnel?.(first.host, first.port).catch(() => null);
      if (socket === null) continue;
      const error = await brokerHandshake({
        broker: first,
        certificate: o.certificate,
        privateKey: o.privateKey,
        trust: o.trust,
        socket,
      });
      if (this.#client !== client) return;
      if (error) {
        o.log.debug(`broker ${first.label} does not answer yet: ${error.message}`);
        continue;
      }
      o.log.info(`broker ${first.label} answers again: moving back to it`);
      this.#closing = new MovingBack(`moving back to broker ${first.label}`);
      client.end(false);
      return;
    }
  }

  /** Subscribes every topic. @throws {SubscriptionRefusedError} naming the topics the broker refused */
  #subscribe(client: mqtt.MqttClient): Promise<void> {
    const { subscriptions, log, clientId } = this.#options;
    const request = Object.fromEntries(subscriptions.map(({ topic, qos }) => [topic, { qos }]));
    return new Promise((resolve, reject) => {
      client.subscribe(request, {}, (error, _granted, packet) => {
        const codes = packet?.granted ?? [];
        const refused = subscriptions.filter((_, i) =>
          typeof codes[i] !== "number" || (codes[i] & 0x80) !== 0
        );
        if (!error && refused.length === 0) {
          for (const { topic } of subscriptions) log.debug(`subscribed to ${topic}`);
          return resolve();
        }
        const topics = (refused.length > 0 ? refused : subscriptions).map((s) => s.topic).join(", ");
        reject(
          new SubscriptionRefusedError(
            packet
              ? `the broker refused the subscription to ${topics} (SUBACK 0x80; check the broker's ACL for client id ${clientId}); reconnecting to subscribe again`
              : `subscribing to ${topics} failed (${error?.message}); reconnecting to subscribe again`,
          ),
        );
      });
    });
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
      this.#options.log.error(`${callback} failed: ${(error as Error).message}`);
    }
  }
}

function toBytes(payload: string | Uint8Array): Uint8Array {
  return typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
}
