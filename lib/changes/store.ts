/**
 * The change store (`snaplogger.database.location`, sqlite): every snap change ever seen, upserted by id (kind,
 * summary, status, ready, spawn and ready times, error, tasks as JSON, first and last seen), kept to the newest `snaplogger.maximum.changes.keep` by spawn time, with deleted space given back.
 * It also remembers which changes already caused a reboot (the watchdog's reboot-loop breaker).
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

  /** True when the change already caused a reboot. */
  causedReboot(id: string): boolean {
    return statement(this.db, "SELECT 1 FROM reboots WHERE change_id = ?").get(id) !== undefined;
  }

  /** True when the change was already aborted by the watchdog. */
  wasAborted(id: string): boolean {
    return statement(this.db, "SELECT 1 FROM reboots WHERE change_id = ? AND aborted_at IS NOT NULL").get(
      id,
    ) !==
      undefined;
  }

  /** Remembers that the change caused a reboot (before rebooting). */
  recordReboot(id: string, now: number): void {
    statement(this.db, "INSERT OR IGNORE INTO reboots (change_id, rebooted_at) VALUES (?, ?)").run(id, now);
  }

  /** Remembers that the watchdog aborted the change. */
  recordAbort(id: string, now: number): void {
    statement(this.db, "UPDATE reboots SET aborted_at = ? WHERE change_id = ?").run(now, id);
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
