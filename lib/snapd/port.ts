/**
 * What the agent asks of snapd, as a port: handlers, the delivery unit, the watchdog and the local API depend on
 * this interface; `SnapdClient` implements it over the REST socket, and tests hand in anything of this shape.
 * Every method rejects with a `SnapdError` carrying snapd's status, kind and message.
 */
import type {
  AppsAction,
  ChangeSelection,
  SnapAction,
  SnapActionOptions,
  SnapdApp,
  SnapdChange,
  SnapdLogEntry,
  SnapdSnap,
  SystemInfo,
  UserRequest,
  UserResult,
} from "./types.ts";

/** Assertions of one type as snapd returns them. */
export interface AssertionBundle {
  /** `X-Ubuntu-Assertions-Count`. */
  count: number;
  /** The assertion stream, as text. */
  text: string;
}

/** A snapshot export: a tar stream and its length. */
export interface SnapshotExport {
  body: ReadableStream<Uint8Array>;
  length: number;
}

/** The snapd operations the agent uses. */
export interface SnapdPort {
  /** `GET /v2/system-info`. */
  systemInfo(): Promise<SystemInfo>;
  /** `GET /v2/assertions/<type>`: the assertion stream and its count (0 when the device has none yet). */
  assertions(type: string): Promise<AssertionBundle>;
  /** `POST /v2/assertions`: adds an assertion (text format). */
  addAssertion(text: string): Promise<void>;
  /** `GET /v2/snaps`: the active snaps, or every installed revision with `select: "all"`. */
  snaps(select?: "all"): Promise<SnapdSnap[]>;
  /** `GET /v2/snaps/<name>`. */
  snap(name: string): Promise<SnapdSnap>;
  /** `GET /v2/snaps/<name>/conf?keys=…`: the whole document when `keys` is empty; numbers keep their text. */
  snapConfig(name: string, keys?: string[]): Promise<Record<string, unknown>>;
  /** `PUT /v2/snaps/<name>/conf`; returns the change id. */
  setSnapConfig(name: string, values: Record<string, unknown>): Promise<string>;
  /** `POST /v2/snaps/<name>` `{"action", …options}`; returns the change id. */
  snapAction(name: string, action: SnapAction, options?: SnapActionOptions): Promise<string>;
  /** `POST /v2/snaps` `{"action":"snapshot","snaps":[…]}`; the change id and the snapshot set id. */
  snapshot(snaps: string[]): Promise<{ changeId: string; setId: number }>;
  /** `GET /v2/snapshots/<id>/export`: the snapshot set as a tar stream. */
  exportSnapshot(setId: number): Promise<SnapshotExport>;
  /** `GET /v2/apps[?select=service][&names=…]`. */
  apps(options?: { select?: "service"; names?: string[] }): Promise<SnapdApp[]>;
  /** `POST /v2/apps` `{"action","names"}`; returns the change id. */
  appsAction(action: AppsAction, names: string[]): Promise<string>;
  /** `GET /v2/logs?n=…[&names=…]`: journal records of the snaps' services, streamed. */
  logs(options: { n: number; names?: string[] }): AsyncGenerator<SnapdLogEntry>;
  /** `GET /v2/changes?select=…[&for=<snap>]` (snapd's default selection is `in-progress`). */
  changes(options?: { select?: ChangeSelection; for?: string }): Promise<SnapdChange[]>;
  /** `GET /v2/changes/<id>`. */
  change(id: string): Promise<SnapdChange>;
  /** `POST /v2/changes/<id>` `{"action":"abort"}`. */
  abortChange(id: string): Promise<SnapdChange>;
  /** `POST /v2/users`: creates or removes a system user. */
  users(request: UserRequest): Promise<UserResult>;
}
