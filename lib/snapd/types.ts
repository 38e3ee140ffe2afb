/** The snapd REST API's JSON shapes, as far as the agent reads them (snapd 2.57; extra keys are kept). */

/** An app of a snap (`apps` of a snap, or an entry of `GET /v2/apps`). */
export interface SnapdApp {
  snap?: string;
  name: string;
  /** Service type (`simple`, `forking`, …); absent for plain commands. */
  daemon?: string;
  "daemon-scope"?: string;
  /** Absent means false. */
  enabled?: boolean;
  /** Absent means false. */
  active?: boolean;
  [key: string]: unknown;
}

/** A snap as `GET /v2/snaps` returns it. */
export interface SnapdSnap {
  id: string;
  name: string;
  title?: string;
  summary?: string;
  description?: string;
  "installed-size"?: number;
  /** RFC 3339 with nanoseconds; absent for revisions that are not current. */
  "install-date"?: string;
  /** `installed`, `active`, … */
  status: string;
  type: string;
  version: string;
  channel?: string;
  "tracking-channel"?: string;
  /** `"123"`, `"x1"` (local, unasserted) or `"unset"`. */
  revision: string;
  confinement: string;
  devmode?: boolean;
  jailmode?: boolean;
  apps?: SnapdApp[];
  [key: string]: unknown;
}

/** One task of a change. */
export interface SnapdTask {
  id: string;
  kind: string;
  summary: string;
  status: string;
  log?: string[];
  progress?: { label: string; done: number; total: number };
  "spawn-time"?: string;
  "ready-time"?: string;
  [key: string]: unknown;
}

/** A change (`GET /v2/changes`). */
export interface SnapdChange {
  id: string;
  kind: string;
  summary: string;
  /** `Default`, `Hold`, `Do`, `Doing`, `Done`, `Abort`, `Undo`, `Undoing`, `Undone`, `Error`. */
  status: string;
  tasks?: SnapdTask[];
  ready: boolean;
  err?: string;
  "spawn-time": string;
  "ready-time"?: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `GET /v2/system-info`. */
export interface SystemInfo {
  series: string;
  version: string;
  "os-release": { id: string; "version-id"?: string };
  "on-classic": boolean;
  "kernel-version": string;
  architecture?: string;
  [key: string]: unknown;
}

/** One journal record of `GET /v2/logs`. */
export interface SnapdLogEntry {
  timestamp: string;
  message: string;
  sid: string;
  pid: string;
}

/** A user created by `POST /v2/users`. */
export interface SnapdUser {
  username: string;
  "ssh-keys"?: string[];
}

/** Actions of `POST /v2/snaps/<name>`. */
export type SnapAction = "install" | "remove" | "refresh" | "revert" | "enable" | "disable" | "switch";

/** Options of `POST /v2/snaps/<name>`; only set keys are sent. */
export interface SnapActionOptions {
  channel?: string;
  revision?: string;
  classic?: boolean;
  devmode?: boolean;
  purge?: boolean;
}

/** Actions of `POST /v2/apps`. */
export type AppsAction = "start" | "stop" | "restart";

/** `select` of `GET /v2/changes`. */
export type ChangeSelection = "all" | "in-progress" | "ready";

/** The body of `POST /v2/users`. */
export type UserRequest =
  | { action: "create"; email: string; sudoer?: boolean; known?: boolean; "force-managed"?: boolean }
  | { action: "remove"; username: string };

/** The result of `POST /v2/users`. */
export type UserResult = { created: SnapdUser[] } | { removed: SnapdUser[] };

/** The statuses in which a change is finished. */
export const READY_STATUSES = new Set(["Done", "Undone", "Hold", "Error"]);
