/** The agent's own database (`$SNAP_DATA/agent.db`): handled actions, the response outbox, required snaps. */
import type { DatabaseSync } from "node:sqlite";
import type { Logger } from "../log.ts";
import { type Migrations, openDatabase } from "./database.ts";
import { statement } from "./statements.ts";

const MIGRATIONS: Migrations = [
  `CREATE TABLE actions (
     id TEXT PRIMARY KEY,
     request TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('accepted', 'started', 'done')),
     received_at INTEGER NOT NULL,
     started_at INTEGER,
     response TEXT
   );
   CREATE INDEX actions_received ON actions (received_at);
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     topic TEXT NOT NULL,
     payload TEXT NOT NULL,
     action_id TEXT
   );
   CREATE TABLE required_snaps (
     name TEXT PRIMARY KEY,
     channel TEXT NOT NULL,
     requested_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT
   );`,
  // the exact crash recovery: the newest snapd change of the snap when an action was marked started
  `ALTER TABLE actions ADD COLUMN baseline_change INTEGER;`,
  // whether that change was ready at the mark: recovery then knows snapd still remembers what came after it
  `ALTER TABLE actions ADD COLUMN baseline_ready INTEGER;`,
  // a reply the broker keeps refusing (it drops the connection each time it is sent): how often, and since when
  // it is set aside, so that it no longer holds the replies behind it — across restarts too
  `ALTER TABLE outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE outbox ADD COLUMN set_aside_at INTEGER;`,
];

/**
 * Opens the agent database. Every commit is durable (synchronous=FULL: the WAL is synced at each commit), so a
 * journal mark or an outbox entry survives a power cut, not only a process kill. Only the agent daemon opens it,
 * so it holds it exclusively: no `-shm` file to write back while idle, and a second agent cannot open it.
 */
export function openAgentDb(path: string, log: Logger): Promise<DatabaseSync> {
  return openDatabase(path, MIGRATIONS, log, { synchronous: "FULL", exclusive: true });
}

/**
 * Forgets what belonged to the enrollment that was just cleared: responses still queued for the old device id
 * (its topic is no longer ours) and the required snaps of its DMS. The journal of handled ids stays.
 */
export function forgetEnrollment(db: DatabaseSync): { responses: number; requiredSnaps: number } {
  const responses = Number(statement(db, "DELETE FROM outbox").run().changes);
  const requiredSnaps = Number(statement(db, "DELETE FROM required_snaps").run().changes);
  return { responses, requiredSnaps };
}
