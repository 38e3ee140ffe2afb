/**
 * The local NATS API service: connects to the local NATS servers as user `snapd`, subscribes every subject of
 * the API once per connection (nats.js renews the subscriptions after its own reconnects), and answers each
 * request. It never blocks enrollment or MQTT: it runs on its own, connects whenever a server appears, and after
 * a connection is lost for good (or refused, e.g. a wrong password) tries again forever with capped full-jitter
 * backoff, logging each distinct cause once. Its requests are bounded (request_gate.ts): beyond
 * `nats.max-in-flight` running and `nats.max-waiting` waiting, a request is answered at once that the agent is busy.
 */
import type { ConnectionOptions, Msg, NatsConnection } from "nats";
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import { hideUserinfo, type Logger } from "../log.ts";
import { type BackoffOptions, retry } from "../retry.ts";
import { answer, type NatsApiPorts, type Subject, SUBJECTS } from "./api.ts";
import { RequestGate, type RequestGateOptions } from "./request_gate.ts";
import { errorMessage, isAuthorizationRefused, isTlsFailure } from "../errors.ts";

/** Options of {@link NatsService}. */
export interface NatsServiceOptions {
  servers: string[];
  /** Password of user `snapd`. */
  password: string;
  /** PEM CA bundle for TLS to the server (`nats.ca`); plain TCP without it. */
  ca?: string;
  /** Connects to the NATS servers (main.ts wires nats.js, through a proxy when one applies). */
  connect(options: ConnectionOptions): Promise<NatsConnection>;
  ports: NatsApiPorts;
  /** The bound of the requests in flight and waiting. @default {maxInFlight: 32, maxWaiting: 256, maxWaitingBytes: 4 MiB} */
  bounds?: RequestGateOptions;
  log: Logger;
  clock: Clock;
  backoff: BackoffOptions;
}

/** The NATS user the agent connects as (the companion NATS snap's convention). */
export const NATS_USER = "snapd";

/** The local API service. */
export class NatsService {
  readonly #options: NatsServiceOptions;
  readonly #ports: NatsApiPorts;
  readonly #failures: FailureLog;
  readonly #stopping = new AbortController();
  #connection: NatsConnection | undefined;
  /** Between nats.js's "disconnect" and "reconnect" status events. */
  #reconnecting = false;
  #running: Promise<void> | undefined;

  constructor(options: NatsServiceOptions) {
    this.#options = options;
    const bounds = options.bounds ?? { maxInFlight: 32, maxWaiting: 256, maxWaitingBytes: 4 * 1024 * 1024 };
    this.#ports = { ...options.ports, gate: new RequestGate(bounds) };
    this.#failures = new FailureLog(
      options.log,
      `connecting to NATS ${options.servers.map(hideUserinfo).join(",")}`,
    );
  }

  /** True while connected to a NATS server. */
  get connected(): boolean {
    return this.#connection !== undefined && !this.#connection.isClosed() && !this.#reconnecting;
  }

  /** Why every write subject is refused, if it is (the published default password). */
  get writeRefusal(): string | undefined {
    return this.#options.ports.writeRefusal;
  }

  /** Why the last connection attempt failed, if it did. */
  get lastError(): string | undefined {
    return this.#failures.lastCause;
  }

  /** Starts connecting in the background. */
  start(): void {
    this.#running ??= this.#run().catch((error) => this.#options.log.error(`NATS service stopped: ${error}`));
  }

  /** Drains the subscriptions and closes the connection. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#connection?.close().catch(() => {});
    await this.#running;
  }

  async #run(): Promise<void> {
    const { log, clock, servers, password, ca } = this.#options;
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      let connection: NatsConnection;
      try {
        connection = await retry(() =>
          this.#options.connect({
            servers,
            user: NATS_USER,
            pass: password,
            name: "iot-agent",
            maxReconnectAttempts: -1,
            reconnectTimeWait: 2000,
            reconnectJitter: 2000,
            reconnectJitterTLS: 2000,
            ...(ca ? { tls: { ca } } : {}),
          }), {
          ...this.#options.backoff,
          clock,
          signal,
          onRetry: (error, delay) => this.#failures.failed(explain(error), delay),
        });
      } catch {
        return; // stopped
      }
      if (signal.aborted) {
        await connection.close();
        return;
      }
      this.#failures.succeeded();
      this.#connection = connection;
      this.#reconnecting = false;
      for (const subject of SUBJECTS) this.#serve(connection, subject);
      await connection.flush().catch(() => {}); // the server has the subscriptions before we say we serve
      log.info(
        `connected to NATS ${connection.getServer()}; serving ${SUBJECTS.length} subjects${
          this.writeRefusal ? ", the writes refused (default password)" : ""
        }`,
      );
      this.#watch(connection);
      const error = await connection.closed();
      this.#connection = undefined;
      if (!signal.aborted) {
        log.warn(`NATS connection closed${error ? `: ${explain(error)}` : ""}; reconnecting`);
      }
    }
  }

  #serve(connection: NatsConnection, definition: Subject): void {
    const subscription = connection.subscribe(definition.subject);
    (async () => {
      for await (const message of subscription) void this.#reply(definition, message);
    })().catch((error) => this.#options.log.warn(`subscription ${definition.subject} ended: ${error}`));
  }

  async #reply(definition: Subject, message: Msg): Promise<void> {
    const reply = await answer(definition, message.subject, message.data, this.#ports);
    if (!message.reply) {
      this.#options.log.debug(`request on ${message.subject} has no reply subject; nothing sent`);
      return;
    }
    message.respond(new TextEncoder().encode(JSON.stringify(reply)));
  }

  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === "disconnect") {
        this.#reconnecting = true;
        this.#options.log.warn(`disconnected from NATS ${status.data}`);
      }
      if (status.type === "reconnect") {
        this.#reconnecting = false;
        this.#options.log.info(`reconnected to NATS ${status.data}`);
      }
      if (status.type === "error") this.#options.log.warn(`NATS: ${explain(status.data)}`);
    }
  }
}

function explain(error: unknown): string {
  const message = errorMessage(error);
  if (isAuthorizationRefused(error)) {
    return `${message}: the server refused user ${NATS_USER} (check nats.snapd.password)`;
  }
  if (isTlsFailure(error)) {
    return `${message}: the NATS server's certificate is not trusted (set nats.ca to the PEM bundle of the CA ` +
      `that signed it)`;
  }
  return message;
}
