/**
 * snapd REST API client: a typed method per endpoint the agent uses, over a {@link SnapdHttp} (the socket,
 * snapd's envelopes, the time limit, the retries and the turn-taking; `openSnapd` in lib/adapters/snapd_http.ts
 * builds the real one).
 */
import { parseAssertions } from "./assertions.ts";
import type { Envelope, RequestOptions, SnapdHttp } from "./transport.ts";
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

/** A typed client of every snapd endpoint the agent uses. */
export class SnapdClient implements SnapdPort {
  readonly #transport: SnapdHttp;

  constructor(transport: SnapdHttp) {
    this.#transport = transport;
  }

  /** The socket it talks to. */
  get socketPath(): string {
    return this.#transport.socketPath;
  }

  /** Requests in flight and waiting for a turn. */
  get load(): { running: number; waiting: number } {
    return this.#transport.load;
  }

  /** Releases the connection pool. */
  close(): void {
    this.#transport.close();
  }

  /**
   * A client of the same snapd whose requests give way: when snapd's request limit is reached, they take a turn
   * only once no request of this client's other users waits (the local API's, so the DMS is served first).
   */
  yielding(): SnapdClient {
    return new SnapdClient(this.#transport.yielding?.() ?? this.#transport);
  }

  /** `GET /v2/system-info`. */
  async systemInfo(): Promise<SystemInfo> {
    return await this.#sync<SystemInfo>("GET", "/v2/system-info");
  }

  /** `GET /v2/assertions/<type>`: the assertion stream and its count (0 when the device has none yet). */
  async assertions(type: string): Promise<AssertionBundle> {
    return await this.#transport.exchange(
      "GET",
      `/v2/assertions/${encodeURIComponent(type)}`,
      {},
      async (response) => {
        if (response.status !== 200) return await this.#transport.fail(response);
        const header = response.headers.get("X-Ubuntu-Assertions-Count");
        const text = await response.text();
        const count = Number(header);
        if (header === null || !Number.isInteger(count) || count < 0 || countAssertions(text) !== count) {
          throw new SnapdError("response did not have the expected number of assertions", response.status);
        }
        return { count, text };
      },
    );
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
    const envelope = await this.#transport.exchange(
      "GET",
      path,
      { query: { keys: keys.join(",") } },
      (r) => this.#transport.envelope(r, true),
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
    const response = await this.#transport.request("GET", `/v2/snapshots/${setId}/export`);
    if (response.status !== 200) return await this.#transport.fail(response);
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
    const response = await this.#transport.request("GET", "/v2/logs", {
      query: { n: String(options.n), names: options.names?.join(",") },
    });
    if (response.status !== 200) return await this.#transport.fail(response);
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
    return this.#expectSync<T>(
      await this.#transport.exchange(method, path, options, (r) => this.#transport.envelope(r, false)),
    );
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
    const [status, envelope] = await this.#transport.exchange(
      method,
      path,
      options,
      async (response) => [response.status, await this.#transport.envelope(response, false)] as const,
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
}

function countAssertions(text: string): number {
  try {
    return parseAssertions(text).length;
  } catch {
    return -1;
  }
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
