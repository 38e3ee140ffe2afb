/**
 * The bytes of requests and responses the agent database holds (the journal's requests and responses, the
 * outbox's payloads): counted by one scan as the delivery unit starts, then kept up to date by every write that adds or
 * removes them, so that the journal's byte bound (`journal.max-bytes`) never scans a table per accepted action.
 */
import type { DatabaseSync } from "node:sqlite";
import { statement } from "../store/statements.ts";

/** The stored bytes of one journal row, as sqlite measures them (UTF-8). */
export const ROW_BYTES = "length(CAST(request AS BLOB)) + coalesce(length(CAST(response AS BLOB)), 0)";

/** A running count of the stored bytes. */
export class StoredBytes {
  #total: number | undefined;

  /** Counts at once, while the agent starts; when that fails, the first {@link total} counts. */
  constructor(private readonly db: DatabaseSync) {
    try {
      this.#total = this.#count();
    } catch { /* the journal's first prune tries again, and reports a failure there */ }
  }

  /** Bytes held now. */
  get total(): number {
    this.#total ??= this.#count();
    return this.#total;
  }

  #count(): number {
    return (statement(
      this.db,
      `SELECT (SELECT coalesce(SUM(${ROW_BYTES}), 0) FROM actions) +
              (SELECT coalesce(SUM(length(CAST(payload AS BLOB))), 0) FROM outbox) AS n`,
    ).get() as { n: number }).n;
  }

  /** `bytes` were written (negative: removed); call it after the commit. */
  add(bytes: number): void {
    if (this.#total !== undefined) this.#total += bytes;
  }

  /** Forgets the count (after a write whose outcome is unknown): the next {@link total} scans again. */
  recount(): void {
    this.#total = undefined;
  }
}

/** The UTF-8 length of `text`, in bytes, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code < 0xdc00) i++, bytes += 2; // a surrogate pair: 4 bytes for 2 units
    else bytes += 2;
  }
  return bytes;
}
