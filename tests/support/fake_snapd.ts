/**
 * A fake snapd on a unix socket, answering with the shapes of the captured snapd 2.57.6 responses
 * (`tests/fixtures/snapd/`): the same envelopes, headers, error messages and kinds, snap and change objects.
 * Each test scripts it: the snaps installed, the store's catalogue, configuration, changes, assertions, logs,
 * and injected errors, conflicts and delays. Every request is recorded, headers included.
 *
 * It is never kinder than snapd; each rule below follows a captured answer (fixture numbers in brackets):
 * - changes take time: `Do`, then `Doing`, then `Done` after `changeDurationMs` (150 ms, what enable/disable take
 *   on a real snapd) [36, 37, 59, 60, 117], and their effect on the snaps lands when they are done;
 * - a request is checked against the snap's state *before* a running change applies: enable right after a
 *   disable is "already enabled" [116, 51]; otherwise a change on a busy snap is 409 `snap-change-conflict`
 *   [109, 111, 53, 54], and a service command 400 without a kind [110];
 * - an action on a snap that is not installed is 400 `snap-not-installed` [105, 61], a revert 400 "no revision
 *   to revert to" [105];
 * - refreshing a local (sideloaded, revision `x…`) snap is 400 `snap-local`, with or without a channel [43, 44];
 *   switching its channel is accepted [106];
 * - `POST /v2/snaps` needs `Content-Type: application/json` [101] (the single-snap and service endpoints decode
 *   the body whatever its type [100, 102]);
 * - an unknown assertion type is 400 [104];
 * - configuring a snap without a configure hook ends its change in Error [30]; snapd's own `system` settings
 *   are handled without a hook [119, 120];
 * - aborting a running change leaves it in progress (`Abort`, not ready) until its work ends [112, 113, 114].
 * What a real snapd cannot do on demand is scripted: injected errors and 409 storms, hung changes
 * (`changeDurationMs = Infinity` or `addChange(…, "Doing")`), slow answers, crashes (`stop()`), huge lists.
 */
import type { SnapdApp, SnapdChange, SnapdLogEntry, SnapdSnap, SnapdTask } from "../../lib/snapd/types.ts";
import { type Assertion, parseAssertions } from "../../lib/snapd/assertions.ts";
import { until } from "./wait.ts";
import { assertionFixture, fixtureResult, snapdFixture } from "./fixtures.ts";

/** A recorded request. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
  headers: Headers;
}

/** Matches requests for scripted behaviour. */
export interface RequestMatch {
  method?: string;
  /** Exact path, or a pattern tested against the path. */
  path: string | RegExp;
}

/** An error answer. */
export interface ScriptedError {
  status: number;
  message: string;
  kind?: string;
  value?: unknown;
}

interface Rule {
  match: RequestMatch;
  remaining: number;
  error?: ScriptedError;
  delayMs?: number;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  202: "Accepted",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
};

/** A snap object in snapd's shape, cloned from the captured `peer-svc` snap and adjusted. */
export function makeSnap(name: string, overrides: Partial<SnapdSnap> = {}): SnapdSnap {
  const template = fixtureResult<SnapdSnap>("13");
  const apps = (overrides.apps ?? []).map((app) => ({ snap: name, ...app }));
  const snap: SnapdSnap = {
    ...template,
    id: `${name}-id-0000000000000000000`.slice(0, 32),
    name,
    summary: `${name} snap`,
    description: `the ${name} snap`,
    status: "active",
    type: "app",
    version: "1.0",
    channel: "latest/stable",
    "tracking-channel": "latest/stable",
    revision: "1",
    confinement: "strict",
    devmode: false,
    "mounted-from": `/var/lib/snapd/snaps/${name}_${overrides.revision ?? "1"}.snap`,
    "install-date": "2026-11-26T23:36:15.767511008Z",
    ...overrides,
    apps,
  };
  if (snap.apps?.length === 0) delete snap.apps;
  if (!overrides.base) delete snap.base;
  return snap;
}

/** The snaps of the captured system (`GET /v2/snaps`, fixture 11): snapd, peer-bbbase and peer-svc. */
export function capturedSnaps(): SnapdSnap[] {
  return structuredClone(fixtureResult<SnapdSnap[]>("11"));
}

/** A fake snapd server. */
export class FakeSnapd {
  /** Installed snaps, every revision (the active one has status `active`). */
  snaps: SnapdSnap[];
  /** Snaps `install` can fetch, by name. */
  store = new Map<string, SnapdSnap>();
  /** Configuration documents, by snap. */
  config = new Map<string, Record<string, unknown>>();
  changes: SnapdChange[] = [];
  /** Assertion streams by type; `undefined` (or absent) means none (count 0). */
  assertions = new Map<string, string | undefined>();
  systemInfo: Record<string, unknown> = fixtureResult("01");
  logs: SnapdLogEntry[] = [];
  /** Snapshot sets: id -> exported bytes. */
  snapshots = new Map<number, Uint8Array>();
  users: { username: string; email: string }[] = [];
  /** How long a new change runs before it is `Done`, in ms (Infinity: it hangs). @default 150 */
  changeDurationMs = 150;
  /** Snaps that have a configure hook (configuring the others ends in Error, as snapd does). */
  configureHooks = new Set<string>();
  readonly requests: RecordedRequest[] = [];
  /** Requests being answered now, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  readonly #rules: Rule[] = [];
  /** Changes started by requests that will end by themselves. */
  readonly #ending = new Set<SnapdChange>();
  /** The snaps each change is about (snapd keeps them as the change's `snap-names`, not shown for most kinds). */
  readonly #snapsOf = new WeakMap<SnapdChange, string[]>();
  #nextChange = 100;
  #nextSnapshot = 3;
  #server: Deno.HttpServer | undefined;

  private constructor(readonly socketPath: string, snaps: SnapdSnap[]) {
    this.snaps = snaps;
    this.assertions.set("model", assertionFixture("model.assert"));
    this.assertions.set("serial", assertionFixture("serial-PEER0001.assert"));
  }

  /** Starts a fake snapd at `socketPath` (a new temp path by default) with the captured snaps. */
  static start(options: { socketPath?: string; snaps?: SnapdSnap[] } = {}): FakeSnapd {
    const socketPath = options.socketPath ??
      `${Deno.makeTempDirSync({ prefix: "fake-snapd-" })}/snapd.socket`;
    const fake = new FakeSnapd(socketPath, options.snaps ?? capturedSnaps());
    fake.listen();
    return fake;
  }

  /** (Re)starts listening on the socket. */
  listen(): void {
    try {
      Deno.removeSync(this.socketPath);
    } catch { /* not there */ }
    this.#server = Deno.serve(
      { path: this.socketPath, transport: "unix", onListen: () => {} },
      (request) => this.#handle(request),
    );
  }

  /** Stops listening (clients then get connection errors, as when snapd restarts). */
  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  /** Stops for good and removes the socket's directory when it made one. */
  async dispose(): Promise<void> {
    await this.stop();
    const dir = this.socketPath.slice(0, this.socketPath.lastIndexOf("/"));
    if (/\/fake-snapd-[^/]+$/.test(dir)) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  /** Answers the next `times` matching requests with an error envelope. */
  failNext(match: RequestMatch, error: ScriptedError, times = 1): void {
    this.#rules.push({ match, remaining: times, error });
  }

  /** Forgets every scripted error and delay still pending. */
  clearScripted(): void {
    this.#rules.length = 0;
  }

  /** Answers the next `times` mutations of `snap` with snapd's 409 `snap-change-conflict`. */
  conflictNext(snap: string, times = 1, changeKind = "install-snap"): void {
    this.failNext({ method: "POST", path: `/v2/snaps/${snap}` }, {
      status: 409,
      message: `snap "${snap}" has "${changeKind}" change in progress`,
      kind: "snap-change-conflict",
      value: { "change-kind": changeKind, "snap-name": snap },
    }, times);
  }

  /** Delays the answers to the next `times` matching requests (their effect happens at once). */
  delayNext(match: RequestMatch, delayMs: number, times = 1): void {
    this.#rules.push({ match, remaining: times, delayMs });
  }

  /** Resolves once every change the fake started has ended (hung ones and scripted ones never do). */
  async idle(timeoutMs = 30_000): Promise<void> {
    await until(() => this.#ending.size === 0, "the fake snapd's changes to end", timeoutMs);
  }

  /** Requests with this method and a path matching `path`. */
  requestsTo(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && matches(path, r.path));
  }

  /**
   * Forgets ready changes by snapd's own rule (overlord/state `Prune`, every 10 minutes in snapd 2.57): those ready
   * for more than 24 h, and beyond 500 ready changes the oldest — always in the order they became ready.
   * Returns how many went.
   */
  prune(now = Date.now()): number {
    const ready = this.changes.filter((c) => c.ready)
      .sort((a, b) => Date.parse(a["ready-time"]!) - Date.parse(b["ready-time"]!));
    let count = ready.length;
    const gone = new Set<SnapdChange>();
    for (const change of ready) {
      if (Date.parse(change["ready-time"]!) < now - 24 * 3_600_000 || count > 500) {
        gone.add(change);
        count--;
      }
    }
    this.changes = this.changes.filter((c) => !gone.has(c));
    return gone.size;
  }

  /**
   * Adds a change (kind, summary, status) as snapd would report it; returns it. `data` is what snapd reports under
   * `data` (its api-data: snapd 2.57 shows it for snapshots only [82, 90], not the snap names of an enable [117,
   * 49]); `snaps` are the snaps it is about (`for=` selects by them), by default those of `data["snap-names"]`.
   */
  addChange(
    kind: string,
    summary: string,
    status = "Done",
    data?: Record<string, unknown>,
    snaps?: string[],
  ): SnapdChange {
    const now = new Date().toISOString();
    const ready = ["Done", "Undone", "Hold", "Error"].includes(status);
    const task: SnapdTask = {
      id: String(this.#nextChange * 10),
      kind,
      summary,
      status,
      progress: { label: "", done: ready ? 1 : 0, total: 1 },
      "spawn-time": now,
      ...(ready ? { "ready-time": now } : {}),
    };
    const change: SnapdChange = {
      id: String(this.#nextChange++),
      kind,
      summary,
      status,
      tasks: [task],
      ready,
      "spawn-time": now,
      ...(ready ? { "ready-time": now } : {}),
      ...(status === "Error" ? { err: `cannot perform the following tasks:\n- ${summary}` } : {}),
      ...(data ? { data } : {}),
    };
    this.changes.push(change);
    this.#snapsOf.set(change, snaps ?? (data?.["snap-names"] as string[] | undefined) ?? []);
    return change;
  }

  async #handle(request: Request): Promise<Response> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await this.#answer(request);
    } finally {
      this.inFlight--;
    }
  }

  async #answer(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const recorded = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      body,
      headers: request.headers,
    };
    this.requests.push(recorded);
    let delayMs = 0;
    let scripted: Response | undefined;
    for (const rule of this.#rules) {
      if (rule.remaining <= 0 || !ruleMatches(rule.match, recorded)) continue;
      rule.remaining--;
      delayMs += rule.delayMs ?? 0;
      if (rule.error) {
        scripted = error(rule.error.status, rule.error.message, rule.error.kind, rule.error.value);
        break;
      }
    }
    let response = scripted;
    if (!response) {
      try {
        response = this.#route(recorded);
      } catch (cause) {
        response = error(500, `fake snapd: ${(cause as Error).message}`);
      }
    }
    // a delayed request has done its work (e.g. started its change) and only its answer is late
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return response;
  }

  #route(r: RecordedRequest): Response {
    const { method, path } = r;
    let m: RegExpMatchArray | null;
    if (method === "GET" && path === "/v2/system-info") return sync(this.systemInfo);
    if (method === "GET" && (m = path.match(/^\/v2\/assertions\/([^/]+)$/))) return this.#getAssertions(m[1]);
    if (method === "POST" && path === "/v2/assertions") return this.#addAssertion(r.body);
    if (method === "GET" && path === "/v2/snaps") return this.#listSnaps(r.query);
    if (method === "POST" && path === "/v2/snaps") {
      // [101]: the multi-snap endpoint decides between a sideload and an instruction by media type
      const type = r.headers.get("Content-Type");
      if (!type) return error(400, "cannot parse content type: mime: no media type");
      if (type.split(";")[0].trim() !== "application/json") {
        return error(400, `unknown content type: ${type}`);
      }
      return this.#snapsAction(r.body);
    }
    if (method === "GET" && (m = path.match(/^\/v2\/snaps\/([^/]+)$/))) return this.#getSnap(m[1]);
    if (method === "POST" && (m = path.match(/^\/v2\/snaps\/([^/]+)$/))) {
      return this.#snapAction(m[1], r.body);
    }
    if (method === "GET" && (m = path.match(/^\/v2\/snaps\/([^/]+)\/conf$/))) {
      return this.#getConf(m[1], r.query);
    }
    if (method === "PUT" && (m = path.match(/^\/v2\/snaps\/([^/]+)\/conf$/))) {
      return this.#setConf(m[1], r.body);
    }
    if (method === "GET" && path === "/v2/apps") return this.#listApps(r.query);
    if (method === "POST" && path === "/v2/apps") return this.#appsAction(r.body);
    if (method === "GET" && path === "/v2/logs") return this.#logs(r.query);
    if (method === "GET" && path === "/v2/changes") return this.#listChanges(r.query);
    if (method === "GET" && (m = path.match(/^\/v2\/changes\/([^/]+)$/))) return this.#getChange(m[1]);
    if (method === "POST" && (m = path.match(/^\/v2\/changes\/([^/]+)$/))) {
      return this.#changeAction(m[1], r.body);
    }
    if (method === "GET" && (m = path.match(/^\/v2\/snapshots\/(\d+)\/export$/))) {
      return this.#export(Number(m[1]));
    }
    if (method === "POST" && path === "/v2/users") return this.#users(r.body);
    return error(404, "not found");
  }

  #getAssertions(type: string): Response {
    if (!ASSERTION_TYPES.has(type)) return error(400, `invalid assert type: "${type}"`); // [104]
    const text = this.assertions.get(type) ?? "";
    const count = text ? parseAssertions(text).length : 0;
    return new Response(text, {
      status: 200,
      headers: {
        "Content-Type": "application/x.ubuntu.assertion; bundle=y",
        "X-Ubuntu-Assertions-Count": String(count),
      },
    });
  }

  #addAssertion(body: string): Response {
    let assertions: Assertion[];
    try {
      assertions = parseAssertions(body);
    } catch {
      assertions = [];
    }
    if (assertions.length === 0) {
      return error(400, "cannot decode request body into assertions: unexpected EOF");
    }
    for (const assertion of assertions) {
      const existing = this.assertions.get(assertion.type);
      this.assertions.set(assertion.type, existing ? `${existing}\n${assertion.text}` : assertion.text);
    }
    return sync(null);
  }

  #active(name: string): SnapdSnap | undefined {
    const revisions = this.snaps.filter((s) => s.name === name);
    return revisions.find((s) => s.status === "active") ?? revisions.find((s) => s["install-date"]) ??
      revisions[0];
  }

  #listSnaps(query: URLSearchParams): Response {
    const select = query.get("select");
    const snaps = select === "all" ? this.snaps : this.snaps.filter((s) => s.status === "active");
    return sync(snaps, { sources: ["local"] });
  }

  #getSnap(name: string): Response {
    const snap = this.#active(name);
    if (!snap) return error(404, "snap not installed", "snap-not-found", name);
    return sync(snap);
  }

  #getConf(name: string, query: URLSearchParams): Response {
    // snapd does not check that the snap exists: one that is not installed has an empty configuration [122];
    // `system` (and `core`) hold snapd's own settings [20]
    const own = name === "system" || name === "core";
    const document = this.#active(name) || own ? this.config.get(name) ?? {} : {};
    const keys = (query.get("keys") ?? "").split(",").filter((k) => k !== "");
    if (keys.length === 0) return sync(document);
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      if (!(key in document)) {
        return error(400, `snap "${name}" has no "${key}" configuration option`, "option-not-found", {
          SnapName: name,
          Key: key,
        });
      }
      out[key] = document[key];
    }
    return sync(out);
  }

  #setConf(name: string, body: string): Response {
    const core = name === "system" || name === "core";
    if (!core && !this.#active(name)) return error(404, "snap not installed", "snap-not-found", name);
    let values: Record<string, unknown>;
    try {
      values = JSON.parse(body);
    } catch {
      return error(400, "cannot decode request body into patch values: unexpected EOF");
    }
    const busy = this.#busy(name);
    if (busy) return conflict(name, busy); // [111]
    const hook = core || this.configureHooks.has(name);
    return this.#startChange("configure-snap", `Change configuration of "${name}" snap`, [name], () => {
      if (!hook) return `Run configure hook of "${name}" snap (snap "${name}" has no "configure" hook)`; // [30]
      this.config.set(name, { ...(this.config.get(name) ?? {}), ...values });
    });
  }

  #snapAction(name: string, body: string): Response {
    let instruction: { action?: string; channel?: string };
    try {
      instruction = JSON.parse(body);
    } catch {
      return error(400, "cannot decode request body into snap instruction: unexpected EOF");
    }
    const snap = this.#active(name);
    const action = instruction.action ?? "";
    const notInstalled = () => error(400, `snap "${name}" is not installed`, "snap-not-installed", name);
    switch (action) {
      case "install": {
        if (snap) return error(400, `snap "${name}" is already installed`, "snap-already-installed", name);
        const available = this.store.get(name);
        if (!available) return error(404, `snap "${name}" not found`, "snap-not-found", name);
        const busy = this.#busy(name);
        if (busy) return conflict(name, busy);
        const channel = instruction.channel || "latest/stable";
        return this.#startChange("install-snap", `Install "${name}" snap`, [name], () => {
          this.snaps.push({
            ...structuredClone(available),
            channel,
            "tracking-channel": channel,
            status: "active",
          });
        });
      }
      case "remove": {
        if (!snap) return notInstalled(); // [61]
        const busy = this.#busy(name);
        if (busy) return conflict(name, busy); // [54]
        return this.#startChange("remove-snap", `Remove "${name}" snap`, [name], () => {
          this.snaps = this.snaps.filter((s) => s.name !== name);
        });
      }
      case "revert":
        if (!snap) return error(400, `cannot revert "${name}": no revision to revert to`); // [105]
        return this.#modify(snap, action, instruction.channel);
      case "refresh":
      case "switch":
      case "enable":
      case "disable":
        if (!snap) return notInstalled(); // [105]
        return this.#modify(snap, action, instruction.channel);
      default:
        return error(400, `unknown action ${action}`);
    }
  }

  #modify(snap: SnapdSnap, action: string, channel: string | undefined): Response {
    const name = snap.name;
    // checked against the state before any running change applies [116, 51]
    if (action === "enable" && snap.status === "active") {
      return error(400, `cannot enable "${name}": snap "${name}" already enabled`);
    }
    if (action === "disable" && snap.status !== "active") {
      return error(400, `cannot disable "${name}": snap "${name}" already disabled`);
    }
    if (action === "refresh" && snap.revision.startsWith("x")) {
      return error(400, "cannot perform operation on local snap", "snap-local", ""); // [43, 44]
    }
    if (action === "revert" && this.snaps.filter((s) => s.name === name).length < 2) {
      return error(400, `cannot revert "${name}": no revision to revert to`);
    }
    const busy = this.#busy(name);
    if (busy) return conflict(name, busy); // [109, 53]
    const verb = action[0].toUpperCase() + action.slice(1);
    const summary = action === "switch" ? `Switch "${name}" snap to ${channel}` : `${verb} "${name}" snap`;
    return this.#startChange(`${action}-snap`, summary, [name], () => {
      if (action === "enable") snap.status = "active";
      if (action === "disable") snap.status = "installed";
      if ((action === "refresh" || action === "switch") && channel) {
        snap["tracking-channel"] = channel;
        if (action === "refresh") snap.channel = channel;
      }
    });
  }

  /** The snaps a change is about. */
  snapsOf(change: SnapdChange): string[] {
    return this.#snapsOf.get(change) ?? [];
  }

  /** The kind of the change in progress on `snap`, if any. */
  #busy(snap: string): string | undefined {
    return this.changes.find((c) => !c.ready && this.snapsOf(c).includes(snap))?.kind;
  }

  #snapsAction(body: string): Response {
    let instruction: { action?: string; snaps?: string[] };
    try {
      instruction = JSON.parse(body);
    } catch {
      return error(400, "cannot decode request body into snap instruction: unexpected EOF");
    }
    if (instruction.action !== "snapshot") {
      return error(400, `unsupported multi-snap operation "${instruction.action}"`);
    }
    const names = instruction.snaps ?? [];
    for (const name of names) {
      if (!this.#active(name)) {
        return error(400, `snap "${name}" is not installed`, "snap-not-installed", name); // [121]
      }
    }
    const setId = this.#nextSnapshot++;
    const tar = snapdFixture("86").body;
    this.snapshots.set(setId, tar);
    return this.#startChange(
      "snapshot-snap",
      `Snapshot snaps ${names.map((n) => `"${n}"`).join(", ")}`,
      names,
      () => {},
      { "set-id": setId },
    );
  }

  #export(setId: number): Response {
    const data = this.snapshots.get(setId);
    if (!data) return error(400, `cannot export ${setId}: no snapshot data found for ${setId}`);
    return new Response(data.slice(), {
      status: 200,
      headers: { "Content-Type": "application/x.snapd.snapshot", "Content-Length": String(data.length) },
    });
  }

  #apps(): SnapdApp[] {
    return this.snaps.filter((s) => s.status === "active").flatMap((s) => s.apps ?? []);
  }

  #listApps(query: URLSearchParams): Response {
    let apps = this.#apps();
    if (query.get("select") === "service") apps = apps.filter((a) => a.daemon);
    const names = (query.get("names") ?? "").split(",").filter((n) => n !== "");
    for (const name of names) {
      const snap = name.split(".")[0];
      if (!this.#active(snap)) return error(404, `snap "${snap}" not found`, "snap-not-found", snap); // [123]
    }
    if (names.length > 0) {
      apps = apps.filter((a) => names.includes(a.snap ?? "") || names.includes(`${a.snap}.${a.name}`));
    }
    return sync(apps);
  }

  #appsAction(body: string): Response {
    let instruction: { action?: string; names?: string[] };
    try {
      instruction = JSON.parse(body);
    } catch {
      return error(400, "cannot decode request body into service operation: unexpected EOF");
    }
    const names = instruction.names ?? [];
    if (names.length === 0) {
      return error(400, "cannot perform operation on services without a list of services");
    }
    const services: SnapdApp[] = [];
    for (const name of names) {
      const [snap, app] = name.split(".");
      if (!this.#active(snap)) return error(404, `snap "${snap}" not found`, "snap-not-found", snap); // [78]
      const found = this.#apps().filter((a) =>
        a.snap === snap && a.daemon && (app === undefined || a.name === app)
      );
      if (found.length === 0) {
        return error(404, `snap "${snap}" has no service "${app ?? ""}"`, "app-not-found"); // [124]
      }
      services.push(...found);
    }
    const action = instruction.action;
    if (!["start", "stop", "restart"].includes(action ?? "")) return error(400, `unknown action "${action}"`);
    const snap = names[0].split(".")[0];
    const busy = this.#busy(snap);
    if (busy) return error(400, `snap "${snap}" has "${busy}" change in progress`); // [110]: no kind
    return this.#startChange("service-control", "Running service command", [snap], () => {
      for (const service of services) service.active = action !== "stop";
    });
  }

  #logs(query: URLSearchParams): Response {
    if (!this.snaps.some((s) => s.apps?.some((a) => a.daemon))) {
      return error(404, "no matching services", "app-not-found");
    }
    const n = Number(query.get("n") ?? "10");
    const entries = n < 0 ? this.logs : this.logs.slice(Math.max(0, this.logs.length - n));
    const text = entries.map((entry) => `\x1e${JSON.stringify(entry)}\n`).join("");
    return new Response(text, { status: 200, headers: { "Content-Type": "application/json-seq" } });
  }

  #listChanges(query: URLSearchParams): Response {
    const select = query.get("select") ?? "in-progress";
    if (!["all", "in-progress", "ready"].includes(select)) {
      return error(400, "select should be one of: all,in-progress,ready");
    }
    const forSnap = query.get("for");
    const changes = this.changes.filter((c) =>
      (select === "all" || (select === "ready") === c.ready) &&
      (!forSnap || this.snapsOf(c).includes(forSnap))
    );
    return sync(changes);
  }

  #getChange(id: string): Response {
    const change = this.changes.find((c) => c.id === id);
    if (!change) return error(404, `cannot find change with id "${id}"`);
    return sync(change);
  }

  #changeAction(id: string, body: string): Response {
    const change = this.changes.find((c) => c.id === id);
    if (!change) return error(404, `cannot find change with id "${id}"`);
    const { action } = JSON.parse(body || "{}") as { action?: string };
    if (action !== "abort") return error(400, `change action "${action}" is unsupported`);
    if (change.ready) return error(400, `cannot abort change ${id} with nothing pending`);
    // [112, 113]: still in progress; it is ready once its running work ends [114]
    change.status = "Abort";
    for (const task of change.tasks ?? []) task.status = "Abort";
    return sync(change);
  }

  #users(body: string): Response {
    const request = JSON.parse(body || "{}") as { action?: string; email?: string; username?: string };
    if (request.action === "create") {
      if (!request.email) return error(400, "cannot create user: 'email' field is empty");
      const username = request.email.split("@")[0].replace(/[^a-z0-9]/g, "");
      this.users.push({ username, email: request.email });
      return sync([{ username, "ssh-keys": [`ssh-rsa AAAA ${request.email}`] }]);
    }
    if (request.action === "remove") {
      const user = this.users.find((u) => u.username === request.username);
      if (!user) return error(400, `user "${request.username}" is not known`);
      this.users = this.users.filter((u) => u !== user);
      return sync({ removed: [{ username: user.username }] });
    }
    return error(400, `unsupported user action "${request.action}"`);
  }

  /**
   * Starts a change on `snaps`: `Do`, `Doing` a moment later, and after `changeDurationMs` its `effect` runs and it
   * is `Done` — or `Error` when the effect returns the failed task's line (snapd's `err` lists it).
   */
  #startChange(
    kind: string,
    summary: string,
    snaps: string[],
    effect: () => string | void,
    result: unknown = null,
  ): Response {
    const shown = kind.includes("snapshot") ? { "snap-names": snaps } : undefined; // [82, 90] vs [117, 49]
    const change = this.addChange(kind, summary, "Do", shown, snaps);
    const duration = this.changeDurationMs;
    if (duration === 0) this.#finish(change, effect());
    else {
      setTimeout(() => this.#progress(change, "Doing"), Math.min(10, duration / 2));
      if (Number.isFinite(duration)) {
        this.#ending.add(change);
        setTimeout(() => this.#finish(change, effect()), duration);
      }
    }
    return json(202, { type: "async", "status-code": 202, status: "Accepted", result, change: change.id });
  }

  #progress(change: SnapdChange, status: string): void {
    if (change.ready || change.status === "Abort") return;
    change.status = status;
    for (const task of change.tasks ?? []) task.status = status;
  }

  #finish(change: SnapdChange, failure: string | void): void {
    this.#ending.delete(change);
    const status = failure ? "Error" : "Done";
    const now = new Date().toISOString();
    change.status = status;
    change.ready = true;
    change["ready-time"] = now;
    for (const task of change.tasks ?? []) {
      task.status = status;
      task["ready-time"] = now;
      task.progress = { label: "", done: 1, total: 1 };
    }
    if (failure) change.err = `cannot perform the following tasks:\n- ${failure}`;
  }
}

/** Assertion types snapd 2.57 knows. */
const ASSERTION_TYPES = new Set([
  "account",
  "account-key",
  "account-key-request",
  "base-declaration",
  "device-session-request",
  "model",
  "preseed",
  "repair",
  "serial",
  "serial-request",
  "snap-build",
  "snap-declaration",
  "snap-developer",
  "snap-revision",
  "store",
  "system-user",
  "validation",
  "validation-set",
]);

/** snapd's 409 for a change on a busy snap. */
function conflict(snap: string, kind: string): Response {
  return error(409, `snap "${snap}" has "${kind}" change in progress`, "snap-change-conflict", {
    "change-kind": kind,
    "snap-name": snap,
  });
}

function matches(pattern: string | RegExp, path: string): boolean {
  return typeof pattern === "string" ? pattern === path : pattern.test(path);
}

function ruleMatches(match: RequestMatch, request: RecordedRequest): boolean {
  return (match.method === undefined || match.method === request.method) && matches(match.path, request.path);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    statusText: STATUS_TEXT[status],
    headers: { "Content-Type": "application/json" },
  });
}

function sync(result: unknown, extra: Record<string, unknown> = {}): Response {
  return json(200, { type: "sync", "status-code": 200, status: "OK", result, ...extra });
}

/** snapd's error envelope. */
export function error(status: number, message: string, kind?: string, value?: unknown): Response {
  const result: Record<string, unknown> = { message };
  if (kind) result.kind = kind;
  if (value !== undefined) result.value = value;
  return json(status, {
    type: "error",
    "status-code": status,
    status: STATUS_TEXT[status] ?? "Error",
    result,
  });
}
