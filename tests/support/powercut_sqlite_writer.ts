/**
 * A child process of the power-cut tests: commits one row per transaction to a sqlite database in WAL mode and
 * prints `committed N` after each commit returns, until killed.
 *
 * Usage: deno run --allow-all tests/support/powercut_sqlite_writer.ts DB SYNCHRONOUS LOCKING_MODE
 * (SYNCHRONOUS: OFF or FULL; LOCKING_MODE: NORMAL, with a -shm file sqlite mmaps, or EXCLUSIVE, without one.)
 * The database must exist with a table `t (id INTEGER PRIMARY KEY, v TEXT)`.
 */
import { DatabaseSync } from "node:sqlite";

const [path, synchronous, locking] = Deno.args;
if (!path || !/^(OFF|FULL)$/.test(synchronous ?? "") || !/^(NORMAL|EXCLUSIVE)$/.test(locking ?? "")) {
  console.error("usage: powercut_sqlite_writer.ts DB OFF|FULL NORMAL|EXCLUSIVE");
  Deno.exit(2);
}
const db = new DatabaseSync(path);
// locking_mode before the first access to the WAL: in EXCLUSIVE mode sqlite then keeps the WAL index in its heap.
db.exec(`PRAGMA locking_mode=${locking}`);
db.exec("PRAGMA journal_mode=WAL");
db.exec(`PRAGMA synchronous=${synchronous}`);
const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
for (let n = 1;; n++) {
  insert.run(`row ${n}`);
  console.log(`committed ${n}`);
}
