/**
 * The change store (`snaplogger.database.location`, sqlite): every snap change ever seen, upserted by id (kind,
 * summary, status, ready, spawn and ready times, error, tasks as JSON, first and last seen), kept to the newest `snaplogger.maximum.changes.keep` by spawn time, with deleted space given back.
 * It also keeps the watchdog's memory: when each running change was first seen (per boot), which changes a reboot
 * was asked for (the reboot-loop breaker) and which were reported without one.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Logger } from "../log.ts";
import type { SnapdChange } from "../snapd/types.ts";
import { type Migrations, openDatabase } from "../store/database.ts";
import { statement } from "../store/statements.ts";

const MIGRATIONS: Migrations = [
  `CREATE TABLE changes (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     summary TEXT NOT NULL,
     status TEXT NOT NULL,
     ready INTEGER NOT NULL,
     spawn_time TEXT,
     spawn_ms INTEGER,
     ready_time TEXT,
     err TEXT,
     tasks TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   );
   CREATE INDEX changes_spawn ON changes (spawn_ms);
   CREATE TABLE reboots (change_id TEXT PRIMARY KEY, rebooted_at INTEGER NOT NULL, aborted_at INTEGER);`,
  // the watchdog's measure survives its restarts: when each running change was first seen, in which boot; the
  // boot a reboot was asked in (a row of an older agent has none: taken as a reboot that happened); reports written
  // without a reboot (watchdog.reboot=false)
  `CREATE TABLE watched (change_id TEXT PRIMARY KEY, boot_id TEXT NOT NULL, first_seen_ms REAL NOT NULL);
   ALTER TABLE reboots ADD COLUMN boot_id TEXT;
   CREATE TABLE reports (change_id TEXT PRIMARY KEY, reported_at INTEGER NOT NULL);`,
];

interface StoredChange {
  id: string;
  kind: string;
  summary: string;
  status: string;
  ready: number;
  spawn_time: string | null;
  ready_time: string | null;
  err: string | null;
  tasks: string;
}

/** What an upsert found. */
export type UpsertOutcome =
  | { kind: "new" }
  | { kind: "changed"; previousStatus: string }
  | { kind: "unchanged" };

/** The store of snap changes. */
export class ChangeStore {
  private constructor(private readonly db: DatabaseSync, readonly path: string) {}

  /** Opens the store; a corrupt file is moved aside, reported and recreated. */
  static async open(path: string, log: Logger): Promise<ChangeStore> {
    return new ChangeStore(await openDatabase(path, MIGRATIONS, log), path);
  }

  /** Inserts or updates a change; says whether it is new or its status changed. */
  upsert(change: SnapdChange, now: number): UpsertOutcome {
    const previous = statement(this.db, "SELECT status, ready FROM changes WHERE id = ?").get(change.id) as
      | { status: string; ready: number }
      | undefined;
    const spawnMs = Date.parse(change["spawn-time"]);
    statement(
      this.db,
      `INSERT INTO changes (id, kind, summary, status, ready, spawn_time, spawn_ms, ready_time, err, tasks, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, summary = excluded.summary, status = excluded.status,
         ready = excluded.ready, spawn_time = excluded.spawn_time, spawn_ms = excluded.spawn_ms,
         ready_time = excluded.ready_time, err = excluded.err, tasks = excluded.tasks, last_seen = excluded.last_seen`,
    ).run(
      change.id,
      change.kind ?? "",
      change.summary ?? "",
      change.status ?? "",
      change.ready ? 1 : 0,
      change["spawn-time"] ?? null,
      Number.isNaN(spawnMs) ? null : spawnMs,
      change["ready-time"] ?? null,
      change.err ?? null,
      JSON.stringify(change.tasks ?? []),
      now,
      now,
    );
    if (!previous) return { kind: "new" };
    if (previous.status !== change.status || Boolean(previous.ready) !== Boolean(change.ready)) {
      return { kind: "changed", previousStatus: previous.status };
    }
    return { kind: "unchanged" };
  }

  /** Deletes the oldest changes (by spawn time) beyond `keep`; returns how many went. */
  retain(keep: number): number {
    const result = statement(
      this.db,
      `DELETE FROM changes WHERE id IN
         (SELECT id FROM changes ORDER BY spawn_ms DESC, id DESC LIMIT -1 OFFSET ?)`,
    ).run(keep);
    const deleted = Number(result.changes);
    if (deleted > 0) this.db.exec("PRAGMA incremental_vacuum");
    return deleted;
  }

  /** Number of stored changes. */
  count(): number {
    return (statement(this.db, "SELECT COUNT(*) AS n FROM changes").get() as { n: number }).n;
  }

  /** The stored changes spawned at or after `sinceMs`, oldest first, in snapd's shape. */
  spawnedSince(sinceMs: number): SnapdChange[] {
    const rows = statement(
      this.db,
      `SELECT id, kind, summary, status, ready, spawn_time, ready_time, err, tasks FROM changes
       WHERE spawn_ms >= ? ORDER BY spawn_ms, id`,
    ).all(sinceMs) as unknown as StoredChange[];
    return rows.map((row) => ({
      id: row.id,
      kind: row.kind,
      summary: row.summary,
      status: row.status,
      ready: row.ready === 1,
      "spawn-time": row.spawn_time ?? "",
      ...(row.ready_time ? { "ready-time": row.ready_time } : {}),
      ...(row.err ? { err: row.err } : {}),
      tasks: JSON.parse(row.tasks),
    }));
  }

  /** The running changes the watchdog has seen in this boot: id -> ms since boot when first seen. */
  watched(bootId: string): Map<string, number> {
    const rows = statement(this.db, "SELECT change_id, first_seen_ms FROM watched WHERE boot_id = ?").all(
      bootId,
    ) as { change_id: string; first_seen_ms: number }[];
    return new Map(rows.map((row) => [row.change_id, row.first_seen_ms]));
  }

  /** Records when a running change was first seen in this boot (replacing a sighting of an earlier boot). */
  watch(id: string, bootId: string, firstSeenMs: number): void {
    statement(
      this.db,
      "INSERT OR REPLACE INTO watched (change_id, boot_id, first_seen_ms) VALUES (?, ?, ?)",
    ).run(id, bootId, firstSeenMs);
  }

  /** Forgets the sightings of changes no longer running, and of other boots. */
  unwatch(ids: string[], bootId: string): void {
    statement(this.db, "DELETE FROM watched WHERE boot_id != ?").run(bootId);
    for (const id of ids) statement(this.db, "DELETE FROM watched WHERE change_id = ?").run(id);
  }

  /**
   * What the watchdog asked for a change: `happened` — a reboot asked in an earlier boot (so it took place);
   * `asked` — a reboot asked in this boot that has not happened (yet); `none`.
   */
  reboot(id: string, bootId: string): "happened" | "asked" | "none" {
    const row = statement(this.db, "SELECT boot_id FROM reboots WHERE change_id = ?").get(id) as
      | { boot_id: string | null }
      | undefined;
    if (!row) return "none";
    return row.boot_id === bootId ? "asked" : "happened";
  }

  /** True when the change was already aborted by the watchdog. */
  wasAborted(id: string): boolean {
    return statement(this.db, "SELECT 1 FROM reboots WHERE change_id = ? AND aborted_at IS NOT NULL").get(
      id,
    ) !==
      undefined;
  }

  /** Remembers that a reboot is asked for the change in this boot (before asking). */
  recordReboot(id: string, now: number, bootId: string): void {
    statement(
      this.db,
      "INSERT OR REPLACE INTO reboots (change_id, rebooted_at, boot_id) VALUES (?, ?, ?)",
    ).run(id, now, bootId);
  }

  /** Remembers that the watchdog aborted the change. */
  recordAbort(id: string, now: number): void {
    statement(this.db, "UPDATE reboots SET aborted_at = ? WHERE change_id = ?").run(now, id);
  }

  /** True when a report without a reboot was written for the change. */
  wasReported(id: string): boolean {
    return statement(this.db, "SELECT 1 FROM reports WHERE change_id = ?").get(id) !== undefined;
  }

  /** Remembers a report written without a reboot (watchdog.reboot=false). */
  recordReport(id: string, now: number): void {
    statement(this.db, "INSERT OR IGNORE INTO reports (change_id, reported_at) VALUES (?, ?)").run(id, now);
  }

  /** `PRAGMA integrity_check`: "ok" or the problems found. */
  integrity(): string {
    const rows = statement(this.db, "PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join("; ");
  }

  /** Checkpoints the WAL into the main file and closes. */
  close(): void {
    try {
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.db.close();
    }
  }
}
