/**
 * The way to snapd: HTTP/1.1 over its unix socket (Deno's unix-socket proxy, which sends the request target in
 * absolute form — `GET http://localhost/v2/snaps` — as Go's HTTP server, and so snapd, accepts), snapd's sync /
 * async / error envelope, and a time limit per request.
 *
 * snapd restarts on its own refreshes (and on many devices at boot), so a request that cannot reach it is
 * retried with capped full-jitter backoff within the time limit: any method when the connection itself failed
 * (socket missing, refused, `EAGAIN` — nothing was sent), GETs for any transport failure. A POST or PUT that
 * failed after it was sent is never retried: snapd may have started a change. At most `maxRequests` requests are
 * in flight at once; the others wait their turn — those of {@link SnapdTransport.yielding} (the local API's) only
 * once no other request waits (lib/limiter.ts).
 */
import { parseJsonKeepingNumbers } from "../canonical_json.ts";
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import { ConcurrencyLimit, type Priority } from "../limiter.ts";
import type { Logger } from "../log.ts";
import { retry, RetryError } from "../retry.ts";
import { setLongTimeout } from "../timer.ts";
import { SnapdError } from "../snapd/error.ts";
import { SnapdClient } from "../snapd/client.ts";
import type { Envelope, RequestOptions, SnapdHttp } from "../snapd/transport.ts";
import { errorMessage, isConnectFailure } from "../errors.ts";

/** Options of {@link SnapdTransport} (and of the SnapdClient over it, {@link openSnapd}). */
export interface SnapdClientOptions {
  /** @default "/run/snapd.socket" */
  socketPath?: string;
  /** Time limit of one request, retries included, in ms. @default 120000 */
  timeoutMs?: number;
  /** Time: waits, timeouts and how long things took (the real one is wired in main.ts). */
  clock: Clock;
  /** Requests in flight at once. @default 8 */
  maxRequests?: number;
  /** Where "cannot reach snapd" is logged (once per cause, and the recovery). @default not logged */
  log?: Logger;
}

/** Requests to snapd, each within the time limit and in its turn. */
export class SnapdTransport implements SnapdHttp {
  readonly socketPath: string;
  readonly #http: Deno.HttpClient;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #limit: ConcurrencyLimit;
  readonly #unreachable: FailureLog | undefined;

  constructor(options: SnapdClientOptions) {
    this.socketPath = options.socketPath ?? "/run/snapd.socket";
    this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: this.socketPath } });
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#clock = options.clock;
    this.#limit = new ConcurrencyLimit(options.maxRequests ?? 8);
    this.#unreachable = options.log && new FailureLog(options.log, `reaching snapd at ${this.socketPath}`);
  }

  /** Requests in flight and waiting for a turn. */
  get load(): { running: number; waiting: number } {
    return { running: this.#limit.running, waiting: this.#limit.waiting };
  }

  /** Releases the connection pool. */
  close(): void {
    this.#http.close();
  }

  /** Reads and checks the JSON envelope; throws the SnapdError an error envelope describes. */
  async envelope(response: Response, keepNumbers: boolean): Promise<Envelope> {
    const text = await response.text();
    let envelope: Envelope;
    try {
      envelope = (keepNumbers ? parseJsonKeepingNumbers(text) : JSON.parse(text)) as Envelope;
    } catch (error) {
      if (!(response.headers.get("Content-Type") ?? "").startsWith("application/json")) {
        throw new SnapdError(`server error: "${response.status} ${response.statusText}"`, response.status);
      }
      throw new SnapdError(
        `cannot decode "${text.slice(0, 200)}": ${errorMessage(error)}`,
        response.status,
      );
    }
    if (typeof envelope !== "object" || envelope === null) {
      throw new SnapdError(`cannot decode "${text.slice(0, 200)}": not an object`, response.status);
    }
    if (envelope.type === "error") throw errorFromEnvelope(envelope, response);
    return envelope;
  }

  /** A non-200 answer of a non-JSON endpoint: snapd's error envelope, or the status line. */
  async fail(response: Response): Promise<never> {
    await this.envelope(response, false);
    throw new SnapdError(`server error: "${response.status} ${response.statusText}"`, response.status);
  }

  /** Sends the request and hands the response to `consume`, all within the time limit, in its turn. */
  exchange<T>(
    method: string,
    path: string,
    options: RequestOptions,
    consume: (response: Response) => Promise<T>,
    priority: Priority = "first",
  ): Promise<T> {
    return this.#limit.run(() => this.#timedExchange(method, path, options, consume), priority);
  }

  /** The same way to snapd, whose requests take a free turn only when no other request waits for one. */
  yielding(): SnapdHttp {
    const load = () => this.load;
    return {
      socketPath: this.socketPath,
      get load() {
        return load();
      },
      close: () => this.close(),
      envelope: (response, keepNumbers) => this.envelope(response, keepNumbers),
      fail: (response) => this.fail(response),
      exchange: (method, path, options, consume) => this.exchange(method, path, options, consume, "yielding"),
      request: (method, path, options = {}) =>
        this.exchange(method, path, options, (response) => Promise.resolve(response), "yielding"),
    };
  }

  async #timedExchange<T>(
    method: string,
    path: string,
    options: RequestOptions,
    consume: (response: Response) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const cancelTimer = setLongTimeout(() => controller.abort(), this.#timeoutMs);
    try {
      const response = await this.#send(method, path, options, controller.signal);
      return await consume(response);
    } catch (error) {
      if (controller.signal.aborted) {
        throw new SnapdError(
          "cannot communicate with server: timeout exceeded while waiting for response",
          0,
          "",
          undefined,
          {
            cause: error,
          },
        );
      }
      if (error instanceof SnapdError) throw error;
      throw transportError(error instanceof RetryError ? error.cause : error);
    } finally {
      cancelTimer();
    }
  }

  /** A request whose body is streamed: the time limit covers the response headers only. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return await this.exchange(method, path, options, (response) => Promise.resolve(response));
  }

  /**
   * Sends the request; one that cannot reach snapd is retried within the time limit: any method when nothing was
   * sent, a GET whatever failed.
   */
  async #send(method: string, path: string, options: RequestOptions, signal: AbortSignal): Promise<Response> {
    const url = new URL(`http://localhost${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers = new Headers();
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers.set("Content-Type", "application/json");
    }
    const response = await retry(() => fetch(url, { method, headers, body, client: this.#http, signal }), {
      initialMs: 250,
      maxMs: 2000,
      clock: this.#clock,
      signal,
      budgetMs: this.#timeoutMs,
      shouldRetry: (error) => method === "GET" || isConnectFailure(error),
      onRetry: (error, delay) => this.#unreachable?.failed(transportError(error).message, delay),
    });
    this.#unreachable?.succeeded();
    return response;
  }
}

function transportError(error: unknown): SnapdError {
  const cause = (error as { cause?: { message?: string } })?.cause?.message;
  const message = error instanceof Error ? error.message : String(error);
  const reason = cause && !message.includes(cause) ? `${message}: ${cause}` : message;
  return new SnapdError(`cannot communicate with server: ${reason}`, 0, "", undefined, { cause: error });
}

function errorFromEnvelope(envelope: Envelope, response: Response): SnapdError {
  const result = (envelope.result ?? {}) as { message?: unknown; kind?: unknown; value?: unknown };
  const message = typeof result.message === "string" && result.message !== ""
    ? result.message
    : `server error: "${response.status} ${response.statusText}"`;
  return new SnapdError(
    message,
    response.status,
    typeof result.kind === "string" ? result.kind : "",
    result.value,
  );
}

/** A snapd client over the real socket: what main.ts (and the tests) talk to snapd with. */
export function openSnapd(options: SnapdClientOptions): SnapdClient {
  return new SnapdClient(new SnapdTransport(options));
}
