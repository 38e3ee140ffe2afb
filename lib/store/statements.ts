/**
 * Prepared statements, prepared once per database and SQL text. Preparing a statement for every call costs CPU
 * and, with node:sqlite, native memory that is only given back when the database closes (measured: about 28 MB
 * per thousand actions) — so every query of the agent goes through here.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

const cache = new WeakMap<DatabaseSync, Map<string, StatementSync>>();

/** The prepared statement for `sql` on `db`, prepared on first use. */
export function statement(db: DatabaseSync, sql: string): StatementSync {
  let statements = cache.get(db);
  if (!statements) cache.set(db, statements = new Map());
  let prepared = statements.get(sql);
  if (!prepared) statements.set(sql, prepared = db.prepare(sql));
  return prepared;
}
