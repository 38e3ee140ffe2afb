/**
 * Opening an sqlite database (node:sqlite) the way every store of the agent does: WAL journal (survives a power
 * cut), a versioned schema applied by numbered migrations recorded in `schema_migrations`, and a corrupt or
 * unreadable file moved aside (`<name>.corrupt-<time>`), reported, and recreated — the agent keeps running.
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { makeDirectory, moveAside, syncDirectory } from "../files.ts";
import type { Logger } from "../log.ts";
import { errorMessage, isDatabaseCorrupt } from "../errors.ts";

/** Schema steps, applied in order; index + 1 is the version. */
export type Migrations = readonly string[];

/** Options of {@link openDatabase}. */
export interface DatabaseOptions {
  /**
   * `NORMAL`: a commit survives a process kill, and the database stays consistent across a power cut, but the
   * last commits may be lost then. `FULL`: every commit also survives a power cut (one fsync per commit).
   * @default "NORMAL"
   */
  synchronous?: "NORMAL" | "FULL";
  /**
   * One process only: the database is locked for as long as it is open, and the WAL index lives in the process's
   * memory instead of a shared `-shm` file the kernel writes back to flash while the agent sits idle. A second
   * process gets "database is locked" (and the file is left alone). @default false
   */
  exclusive?: boolean;
}

/**
 * The size a WAL file is cut back to when it starts over after a checkpoint, in bytes. sqlite checkpoints at about
 * 4 MiB of frames and then reuses the file from its start, keeping it at its largest for good; cut back, a database
 * that was written in a burst holds at most this much WAL afterwards.
 */
export const WAL_SIZE_LIMIT = 1024 * 1024;

function tryOpen(path: string, migrations: Migrations, options: DatabaseOptions): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    if (options.exclusive) db.exec("PRAGMA locking_mode = EXCLUSIVE;"); // before WAL: no shared-memory file
    // auto_vacuum only takes effect before the first table exists: it lets deleted rows give space back
    db.exec("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;");
    db.exec(`PRAGMA synchronous = ${options.synchronous ?? "NORMAL"};`);
    // a WAL is reused from its start after each checkpoint but never shrinks by itself
    db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT};`);

    db.exec("PRAGMA busy_timeout = 5000;");
    // 512 KiB of page cache instead of sqlite's 2 MiB: the agent's hot rows are few, and the OS caches the file
    db.exec("PRAGMA cache_size = -512;");
    const check = db.prepare("PRAGMA quick_check").get() as { quick_check?: string } | undefined;
    if (check?.quick_check !== "ok") throw new Error(`integrity check failed: ${check?.quick_check}`);
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    );
    const row = db.prepare("SELECT MAX(version) AS version FROM schema_migrations").get() as {
      version: number | null;
    };
    const current = row.version ?? 0;
    if (current > migrations.length) {
      throw new Error(`schema version ${current} is newer than this agent knows`);
    }
    for (let version = current + 1; version <= migrations.length; version++) {
      db.exec("BEGIN");
      db.exec(migrations[version - 1]);
      db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(
        version,
        Date.now(),
      );
      db.exec("COMMIT");
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Runs `write` with commits that are not synced (`synchronous=NORMAL` in WAL mode): a kill loses none of them,
 * a power cut may lose the last ones (never the database's consistency, and never a synced commit after them —
 * the WAL is written in order and each sync covers everything before it). For writes that guard no effect: no
 * fsync, no flash wear. The database's own setting is back afterwards; call it outside a transaction.
 */
export function unsynced<T>(db: DatabaseSync, write: () => T): T {
  const level = (db.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous;
  if (level <= 1) return write(); // OFF or NORMAL already
  db.exec("PRAGMA synchronous = NORMAL");
  try {
    return write();
  } finally {
    db.exec(`PRAGMA synchronous = ${level}`);
  }
}

/** The files sqlite keeps beside a database. */
const COMPANIONS = ["-wal", "-shm", "-journal"];

/**
 * Makes the database file before sqlite does, mode 0600: sqlite would create it 0644 under the usual umask, and
 * gives its `-wal`, `-shm` and `-journal` files the database's own mode. A file an older agent left wider is
 * narrowed, its companions too.
 */
async function makePrivate(path: string): Promise<void> {
  let created = false;
  try {
    (await Deno.open(path, { createNew: true, write: true, mode: 0o600 })).close();
    created = true;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  if (created) await syncDirectory(dirname(path)); // the new name lasts before sqlite's first commit syncs anything
  for (const name of [path, ...COMPANIONS.map((suffix) => path + suffix)]) {
    await Deno.chmod(name, 0o600).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/** Opens (creating, migrating, or replacing a corrupt file) the database at `path`. */
export async function openDatabase(
  path: string,
  migrations: Migrations,
  log: Logger,
  options: DatabaseOptions = {},
): Promise<DatabaseSync> {
  await makeDirectory(dirname(path));
  await makePrivate(path);
  try {
    return tryOpen(path, migrations, options);
  } catch (error) {
    if (!isDatabaseCorrupt(error)) throw error; // locked by another process, no space, no permission: not ours to move
    const aside = await moveAside(path);
    for (const suffix of COMPANIONS) await Deno.remove(path + suffix).catch(() => {});
    log.error(`database ${path} is unusable (${errorMessage(error)}); moved to ${aside} and recreated`);
    await makePrivate(path);
    return tryOpen(path, migrations, options);
  }
}
