/**
 * snapd REST API client: HTTP/1.1 over the unix socket (Deno's unix-socket proxy, which sends the request target
 * in absolute form — `GET http://localhost/v2/snaps` — as Go's HTTP server, and so snapd, accepts), snapd's
 * sync / async / error envelope, and a time limit per request.
 *
 * snapd restarts on its own refreshes (and on many devices at boot), so a request that cannot reach it is
 * retried with capped full-jitter backoff within the time limit: any method when the connection itself failed
 * (socket missing, refused, `EAGAIN` — nothing was sent), GETs for any transport failure. A POST or PUT that
 * failed after it was sent is never retried: snapd may have started a change. At most `maxRequests` requests are
 * in flight at once; the others wait their turn.
 */
import { parseJsonKeepingNumbers } from "../canonical_json.ts";
import { type Clock, systemClock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import { ConcurrencyLimit } from "../limiter.ts";
import type { Logger } from "../log.ts";
import { retry, RetryError } from "../retry.ts";
import { setLongTimeout } from "../timer.ts";
import { parseAssertions } from "./assertions.ts";
import { SnapdError } from "./error.ts";
import type { AssertionBundle, SnapdPort, SnapshotExport } from "./port.ts";
import type {
  AppsAction,
  ChangeSelection,
  SnapAction,
  SnapActionOptions,
  SnapdApp,
  SnapdChange,
  SnapdLogEntry,
  SnapdSnap,
  SnapdUser,
  SystemInfo,
  UserRequest,
  UserResult,
} from "./types.ts";

/** Options of {@link SnapdClient}. */
export interface SnapdClientOptions {
  /** @default "/run/snapd.socket" */
  socketPath?: string;
  /** Time limit of one request, retries included, in ms. @default 120000 */
  timeoutMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Requests in flight at once. @default 8 */
  maxRequests?: number;
  /** Where "cannot reach snapd" is logged (once per cause, and the recovery). @default not logged */
  log?: Logger;
}

interface Envelope {
  type: string;
  result?: unknown;
  change?: string;
}

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: string;
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
}

/** A typed client of every snapd endpoint the agent uses. */
export class SnapdClient implements SnapdPort {
  readonly socketPath: string;
  readonly #http: Deno.HttpClient;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #limit: ConcurrencyLimit;
  readonly #unreachable: FailureLog | undefined;

  constructor(options: SnapdClientOptions = {}) {
    this.socketPath = options.socketPath ?? "/run/snapd.socket";
    this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: this.socketPath } });
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#clock = options.clock ?? systemClock;
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

  /** `GET /v2/system-info`. */
  async systemInfo(): Promise<SystemInfo> {
    return await this.#sync<SystemInfo>("GET", "/v2/system-info");
  }

  /** `GET /v2/assertions/<type>`: the assertion stream and its count (0 when the device has none yet). */
  async assertions(type: string): Promise<AssertionBundle> {
    return await this.#exchange("GET", `/v2/assertions/${encodeURIComponent(type)}`, {}, async (response) => {
      if (response.status !== 200) return await this.#fail(response);
      const header = response.headers.get("X-Ubuntu-Assertions-Count");
      const text = await response.text();
      const count = Number(header);
      if (header === null || !Number.isInteger(count) || count < 0 || countAssertions(text) !== count) {
        throw new SnapdError("response did not have the expected number of assertions", response.status);
      }
      return { count, text };
    });
  }

  /** `POST /v2/assertions`: adds an assertion (text format) to the device's database. */
  async addAssertion(text: string): Promise<void> {
    await this.#sync("POST", "/v2/assertions", { body: text });
  }

  /** `GET /v2/snaps`: the active snaps, or every installed revision with `select: "all"`. */
  async snaps(select?: "all"): Promise<SnapdSnap[]> {
    return await this.#sync<SnapdSnap[]>("GET", "/v2/snaps", { query: { select } });
  }

  /** `GET /v2/snaps/<name>`. */
  async snap(name: string): Promise<SnapdSnap> {
    return await this.#sync<SnapdSnap>("GET", `/v2/snaps/${encodeURIComponent(name)}`);
  }

  /**
   * `GET /v2/snaps/<name>/conf?keys=…`: the whole configuration document when `keys` is empty. Numbers keep
   * their literal text (they stringify back unchanged).
   */
  async snapConfig(name: string, keys: string[] = []): Promise<Record<string, unknown>> {
    const path = `/v2/snaps/${encodeURIComponent(name)}/conf`;
    const envelope = await this.#exchange(
      "GET",
      path,
      { query: { keys: keys.join(",") } },
      (r) => this.#envelope(r, true),
    );
    return this.#expectSync<Record<string, unknown>>(envelope);
  }

  /** `PUT /v2/snaps/<name>/conf`; returns the change id. */
  async setSnapConfig(name: string, values: Record<string, unknown>): Promise<string> {
    return (await this.#async("PUT", `/v2/snaps/${encodeURIComponent(name)}/conf`, { json: values }))
      .changeId;
  }

  /** `POST /v2/snaps/<name>` `{"action", …options}`; returns the change id. */
  async snapAction(name: string, action: SnapAction, options: SnapActionOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { action };
    for (const [key, value] of Object.entries(options)) {
      if (value !== undefined && value !== "") body[key] = value;
    }
    return (await this.#async("POST", `/v2/snaps/${encodeURIComponent(name)}`, { json: body })).changeId;
  }

  /** `POST /v2/snaps` `{"action":"snapshot","snaps":[…]}`; returns the change id and the snapshot set id. */
  async snapshot(snaps: string[]): Promise<{ changeId: string; setId: number }> {
    const { changeId, result } = await this.#async("POST", "/v2/snaps", {
      json: { action: "snapshot", snaps },
    });
    const setId = (result as { "set-id"?: unknown } | null)?.["set-id"];
    if (typeof setId !== "number") {
      throw new SnapdError("server result does not contain snapshot set identifier", 202);
    }
    return { changeId, setId };
  }

  /** `GET /v2/snapshots/<id>/export`: the snapshot set as a tar stream (no time limit on the body). */
  async exportSnapshot(setId: number): Promise<SnapshotExport> {
    const response = await this.#request("GET", `/v2/snapshots/${setId}/export`);
    if (response.status !== 200) return await this.#fail(response);
    const type = response.headers.get("Content-Type") ?? "";
    if (type !== "application/x.snapd.snapshot") {
      await response.body?.cancel();
      throw new SnapdError(`unexpected snapshot export content type "${type}"`, response.status);
    }
    const length = Number(response.headers.get("Content-Length"));
    if (!response.body || !Number.isInteger(length)) {
      throw new SnapdError("snapshot export without a length", response.status);
    }
    return { body: response.body, length };
  }

  /** `GET /v2/apps[?select=service][&names=…]`. */
  async apps(options: { select?: "service"; names?: string[] } = {}): Promise<SnapdApp[]> {
    return await this.#sync<SnapdApp[]>("GET", "/v2/apps", {
      query: { select: options.select, names: options.names?.join(",") },
    });
  }

  /** `POST /v2/apps` `{"action","names"}`: starts, stops or restarts services; returns the change id. */
  async appsAction(action: AppsAction, names: string[]): Promise<string> {
    return (await this.#async("POST", "/v2/apps", { json: { action, names } })).changeId;
  }

  /**
   * `GET /v2/logs?n=…[&names=…]`: journal records of the snaps' services, streamed (`n` < 0: all).
   * Records that are not well-formed are skipped.
   */
  async *logs(options: { n: number; names?: string[] }): AsyncGenerator<SnapdLogEntry> {
    const response = await this.#request("GET", "/v2/logs", {
      query: { n: String(options.n), names: options.names?.join(",") },
    });
    if (response.status !== 200) return await this.#fail(response);
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of response.body ?? []) {
      pending += decoder.decode(chunk, { stream: true });
      const records = pending.split("\x1e");
      pending = records.pop() ?? "";
      for (const record of records) yield* decodeLogRecord(record);
    }
    yield* decodeLogRecord(pending + decoder.decode());
  }

  /** `GET /v2/changes?select=…[&for=<snap>]` (snapd's default selection is `in-progress`). */
  async changes(options: { select?: ChangeSelection; for?: string } = {}): Promise<SnapdChange[]> {
    return await this.#sync<SnapdChange[]>("GET", "/v2/changes", {
      query: { select: options.select, for: options.for },
    });
  }

  /** `GET /v2/changes/<id>`. */
  async change(id: string): Promise<SnapdChange> {
    return await this.#sync<SnapdChange>("GET", `/v2/changes/${encodeURIComponent(id)}`);
  }

  /** `POST /v2/changes/<id>` `{"action":"abort"}`. */
  async abortChange(id: string): Promise<SnapdChange> {
    return await this.#sync<SnapdChange>("POST", `/v2/changes/${encodeURIComponent(id)}`, {
      json: { action: "abort" },
    });
  }

  /** `POST /v2/users`: creates or removes a system user. */
  async users(request: UserRequest): Promise<UserResult> {
    const result = await this.#sync<unknown>("POST", "/v2/users", { json: request });
    if (request.action === "create") return { created: Array.isArray(result) ? (result as SnapdUser[]) : [] };
    const removed = (result as { removed?: unknown } | null)?.removed;
    return { removed: Array.isArray(removed) ? (removed as SnapdUser[]) : [] };
  }

  async #sync<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.#expectSync<T>(await this.#exchange(method, path, options, (r) => this.#envelope(r, false)));
  }

  #expectSync<T>(envelope: Envelope): T {
    if (envelope.type !== "sync") throw new SnapdError(`expected sync response, got "${envelope.type}"`, 200);
    return envelope.result as T;
  }

  async #async(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ changeId: string; result: unknown }> {
    const [status, envelope] = await this.#exchange(
      method,
      path,
      options,
      async (response) => [response.status, await this.#envelope(response, false)] as const,
    );
    if (envelope.type !== "async") {
      throw new SnapdError(
        `expected async response for "${method}" on "${path}", got "${envelope.type}"`,
        status,
      );
    }
    if (status !== 202) throw new SnapdError("operation not accepted", status);
    if (!envelope.change) throw new SnapdError("async response without change reference", status);
    return { changeId: envelope.change, result: envelope.result };
  }

  /** Reads and checks the JSON envelope; throws the SnapdError an error envelope describes. */
  async #envelope(response: Response, keepNumbers: boolean): Promise<Envelope> {
    const text = await response.text();
    let envelope: Envelope;
    try {
      envelope = (keepNumbers ? parseJsonKeepingNumbers(text) : JSON.parse(text)) as Envelope;
    } catch (error) {
      if (!(response.headers.get("Content-Type") ?? "").startsWith("application/json")) {
        throw new SnapdError(`server error: "${response.status} ${response.statusText}"`, response.status);
      }
      throw new SnapdError(
        `cannot decode "${text.slice(0, 200)}": ${(error as Error).message}`,
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
  async #fail(response: Response): Promise<never> {
    await this.#envelope(response, false);
    throw new SnapdError(`server error: "${response.status} ${response.statusText}"`, response.status);
  }

  /** Sends the request and hands the response to `consume`, all within the time limit, in its turn. */
  #exchange<T>(
    method: string,
    path: string,
    options: RequestOptions,
    consume: (response: Response) => Promise<T>,
  ): Promise<T> {
    return this.#limit.run(() => this.#timedExchange(method, path, options, consume));
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
  async #request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return await this.#exchange(method, path, options, (response) => Promise.resolve(response));
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
      shouldRetry: (error) => method === "GET" || nothingSent(error),
      onRetry: (error, delay) => this.#unreachable?.failed(transportError(error).message, delay),
    });
    this.#unreachable?.succeeded();
    return response;
  }
}

/** True when the connection itself failed (socket missing, refused, busy): the request was never sent. */
export function nothingSent(error: unknown): boolean {
  const cause = (error as { cause?: { message?: string } })?.cause?.message ?? "";
  return /client error \(Connect\)/.test(`${(error as Error)?.message ?? ""} ${cause}`);
}

function countAssertions(text: string): number {
  try {
    return parseAssertions(text).length;
  } catch {
    return -1;
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

function* decodeLogRecord(record: string): Generator<SnapdLogEntry> {
  const trimmed = record.trim();
  if (trimmed === "") return;
  try {
    const entry = JSON.parse(trimmed) as Partial<SnapdLogEntry>;
    if (typeof entry.timestamp === "string" && typeof entry.message === "string") {
      yield {
        timestamp: entry.timestamp,
        message: entry.message,
        sid: String(entry.sid ?? ""),
        pid: String(entry.pid ?? ""),
      };
    }
  } catch {
    // snapd skips records it cannot decode; so do we
  }
}
