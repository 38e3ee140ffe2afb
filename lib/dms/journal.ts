/**
 * The action journal: every action id the agent accepted, its state and its response, in sqlite, so that a
 * redelivered id is answered with the stored response instead of running again, and an agent restart resumes
 * what was accepted but not finished. Bounded: entries older than 7 days, or beyond the newest 10,000, go; and
 * beyond `journal.max-bytes` of requests and responses stored (journal and outbox together, counted as they are
 * written: stored_bytes.ts) the oldest done entries go until the rest fits, and the pages they held are given
 * back to the file system (incremental vacuum). An entry not done, or whose reply the broker has not yet
 * acknowledged, is never forgotten: those alone may exceed the bound, and are bounded by the actions waiting in
 * memory (admission.ts) and by the outbox draining.
 *
 * States, each written before the side effect it guards:
 *   accepted — before the broker's acknowledgement;
 *   started  — before the snapd request of an action that starts a change, with the newest change id snapd had
 *              for the snap at that moment (the baseline recovery compares against);
 *   done     — the response, stored in one transaction with its outbox entry.
 * What guards an effect is synced (the agent database commits with synchronous=FULL, so it survives a power cut,
 * not only a kill): the acceptance of an action that may change the device, its mark, and its answer (a lost
 * answer would let it run again). The rest guards nothing a power cut could repeat or lose for good — a read-only action, a
 * request answered at once, forgetting old ids — and is written without a sync (unsynced() in store/database.ts):
 * a kill loses none of it, a power cut at worst lets a read-only id be answered again.
 */
import type { DatabaseSync } from "node:sqlite";
import type { ActionRequest } from "../dms_protocol/messages.ts";
import type { Baseline } from "./recovery.ts";
import { statement } from "../store/statements.ts";
import { unsynced } from "../store/database.ts";
import { ROW_BYTES, StoredBytes, utf8Length } from "./stored_bytes.ts";
import { asError } from "../errors.ts";

/** A journal entry. */
export interface JournalEntry {
  request: ActionRequest;
  state: "accepted" | "started" | "done";
  receivedAt: number;
  startedAt?: number;
  /** For a started entry: the newest change id snapd had for the snap before the request (0: none). */
  baselineChange?: number;
  /** For a started entry: whether that change was ready then (unknown for entries of older agents). */
  baselineReady?: boolean;
  /** The encoded response, once done. */
  response?: string;
}

/** Retention of handled ids. */
export const JOURNAL_KEEP_MS = 7 * 24 * 3600 * 1000;
export const JOURNAL_KEEP_COUNT = 10_000;
/** Bytes of requests and responses kept at most, by default (`journal.max-bytes`). */
export const JOURNAL_MAX_BYTES = 16 * 1024 * 1024;
/** Done entries looked at per step of the byte prune. */
const PRUNE_BATCH = 64;

interface Row {
  request: string;
  state: JournalEntry["state"];
  received_at: number;
  started_at: number | null;
  baseline_change: number | null;
  baseline_ready: number | null;
  response: string | null;
}

const COLUMNS = "request, state, received_at, started_at, baseline_change, baseline_ready, response";

function toEntry(row: Row): JournalEntry {
  return {
    request: JSON.parse(row.request),
    state: row.state,
    receivedAt: row.received_at,
    startedAt: row.started_at ?? undefined,
    baselineChange: row.baseline_change ?? undefined,
    baselineReady: row.baseline_ready === null ? undefined : row.baseline_ready === 1,
    response: row.response ?? undefined,
  };
}

/** The age limit is applied once every this many accepted ids (an index range: cheap). */
const PRUNE_EVERY = 100;

/** Where a response goes. */
export interface Answer {
  topic: string;
  payload: string;
}

/** Options of {@link ActionJournal}. */
export interface JournalOptions {
  /**
   * Told when forgetting old ids failed; the journal tries again at the next accept (a prune that fails never
   * changes what was accepted).
   */
  onPruneFailed?: (error: Error) => void;
  /** Whether an action may change the device (its acceptance is then synced). @default every action may */
  changesDevice?: (action: string) => boolean;
  /** Bytes of requests and responses kept at most (`journal.max-bytes`). @default {@link JOURNAL_MAX_BYTES} */
  maxBytes?: number;
}

/** The journal over an open agent database. */
export class ActionJournal {
  #sincePrune = PRUNE_EVERY;
  /** Rows in the table, counted once and then kept up to date: the count limit never scans the table. */
  #rows: number | undefined;

  readonly #onPruneFailed: (error: Error) => void;
  readonly #changesDevice: (action: string) => boolean;
  readonly #maxBytes: number;
  /** The bytes stored in the journal and the outbox; the outbox shares it. */
  readonly bytes: StoredBytes;

  constructor(private readonly db: DatabaseSync, options: JournalOptions = {}) {
    this.#onPruneFailed = options.onPruneFailed ?? (() => {});
    this.#changesDevice = options.changesDevice ?? (() => true);
    this.#maxBytes = options.maxBytes ?? JOURNAL_MAX_BYTES;
    this.bytes = new StoredBytes(db);
  }

  /**
   * Records a new request — already answered when `answer` is given (a request that cannot run), in the same
   * transaction as its outbox entry. Returns the existing entry instead when the id is known.
   * @throws only when the request was not recorded: after a failed commit the row itself decides (a commit can
   *   fail after its data reached the file), so the caller's answer always matches what is stored
   */
  accept(
    request: ActionRequest,
    now: number,
    answer?: Answer,
  ): { fresh: true } | { fresh: false; entry: JournalEntry } {
    const existing = this.get(request.id);
    if (existing) return { fresh: false, entry: existing };
    try {
      this.#transaction(!answer && this.#changesDevice(request.action), () => {
        statement(
          this.db,
          "INSERT INTO actions (id, request, state, received_at, response) VALUES (?, ?, ?, ?, ?)",
        ).run(
          request.id,
          JSON.stringify(request),
          answer ? "done" : "accepted",
          now,
          answer?.payload ?? null,
        );
        if (answer) this.#queue(request.id, answer);
      });
    } catch (error) {
      if (!this.#recorded(request.id)) throw error;
    }
    // the response is stored twice: in the journal and in its outbox entry
    this.bytes.add(utf8Length(JSON.stringify(request)) + 2 * utf8Length(answer?.payload ?? ""));
    this.#maintain(now);
    return { fresh: true };
  }

  /** True when the id is in the journal; false when it is not or cannot be read. */
  #recorded(id: string): boolean {
    try {
      return this.get(id) !== undefined;
    } catch {
      return false;
    }
  }

  /** Keeps the journal within its bounds; a failure is reported and retried next time, never thrown. */
  #maintain(now: number): void {
    try {
      this.#rows = (this.#rows ?? this.size() - 1) + 1;
      if (++this.#sincePrune >= PRUNE_EVERY) unsynced(this.db, () => this.#pruneOld(now));
      if (this.#rows > JOURNAL_KEEP_COUNT) {
        unsynced(this.db, () => this.#pruneOldest(this.#rows! - JOURNAL_KEEP_COUNT));
      }
      if (this.bytes.total > this.#maxBytes) unsynced(this.db, () => this.#pruneBytes());
    } catch (error) {
      this.#rows = undefined; // counted afresh next time
      this.bytes.recount();
      this.#sincePrune = PRUNE_EVERY;
      this.#onPruneFailed(asError(error));
    }
  }

  /** The entry of an id. */
  get(id: string): JournalEntry | undefined {
    const row = statement(this.db, `SELECT ${COLUMNS} FROM actions WHERE id = ?`).get(id) as Row | undefined;
    return row ? toEntry(row) : undefined;
  }

  /** Marks that the action is about to start a snapd change; `baseline` is snapd's newest for the snap. */
  markStarted(id: string, now: number, baseline: Baseline): void {
    statement(
      this.db,
      "UPDATE actions SET state = 'started', started_at = ?, baseline_change = ?, baseline_ready = ? WHERE id = ?",
    )
      .run(now, baseline.change, baseline.ready ? 1 : 0, id);
  }

  /**
   * Stores the response and queues it in the outbox, in one transaction: after a crash either both are there
   * or neither (and the action is resumed). Synced for an action that may change the device, whether it did or
   * not: a lost answer would let it run again after a power cut — a second, different reply for the id, or an
   * `unregister` clearing the next enrollment. Returns the outbox sequence number.
   */
  complete(id: string, answer: Answer): number {
    const row = statement(
      this.db,
      "SELECT json_extract(request, '$.action') AS action FROM actions WHERE id = ?",
    )
      .get(id) as { action: unknown } | undefined;
    const synced = typeof row?.action !== "string" || this.#changesDevice(row.action);
    let seq;
    try {
      seq = this.#transaction(synced, () => {
        statement(this.db, "UPDATE actions SET state = 'done', response = ? WHERE id = ?").run(
          answer.payload,
          id,
        );
        return this.#queue(id, answer);
      });
    } catch (error) {
      this.bytes.recount(); // it may have landed all the same
      throw error;
    }
    this.bytes.add(2 * utf8Length(answer.payload));
    return seq;
  }

  /** Entries accepted or started but not done, oldest first (to resume after a restart). */
  unfinished(): JournalEntry[] {
    const rows = statement(
      this.db,
      `SELECT ${COLUMNS} FROM actions WHERE state != 'done' ORDER BY received_at, rowid`,
    ).all() as unknown as Row[];
    return rows.map(toEntry);
  }

  /**
   * Which of `changeIds` a done action of this journal started (answered with it as its result): the action, its
   * snap and the change, oldest first; ids no action here started are left out.
   */
  startedChanges(changeIds: string[]): { actionId: string; snap: string; change: string }[] {
    return statement(
      this.db,
      `SELECT id AS actionId, json_extract(request, '$.snap') AS snap, json_extract(response, '$.result') AS change
         FROM actions
        WHERE state = 'done' AND baseline_change IS NOT NULL
          AND json_extract(response, '$.result') IN (SELECT value FROM json_each(?))
        ORDER BY rowid`,
    ).all(JSON.stringify(changeIds)) as unknown as { actionId: string; snap: string; change: string }[];
  }

  /** Number of entries kept. */
  size(): number {
    return (statement(this.db, "SELECT COUNT(*) AS n FROM actions").get() as { n: number }).n;
  }

  #queue(id: string, answer: Answer): number {
    const result = statement(this.db, "INSERT INTO outbox (topic, payload, action_id) VALUES (?, ?, ?)").run(
      answer.topic,
      answer.payload,
      id,
    );
    return Number(result.lastInsertRowid);
  }

  /** Runs `body` in one transaction, its commit synced only when `synced`. */
  #transaction<T>(synced: boolean, body: () => T): T {
    return synced ? this.#commit(body) : unsynced(this.db, () => this.#commit(body));
  }

  #commit<T>(body: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      try {
        this.db.exec("ROLLBACK");
      } catch { /* sqlite rolled back by itself (a full disk, an I/O error): the first error is the one */ }
      throw error;
    }
  }

  /** Forgets handled ids older than the retention time. */
  #pruneOld(now: number): void {
    const deleted = statement(
      this.db,
      `DELETE FROM actions WHERE state = 'done' AND received_at < ? RETURNING ${ROW_BYTES} AS bytes`,
    ).all(now - JOURNAL_KEEP_MS) as { bytes: number }[];
    this.#sincePrune = 0;
    this.#forgot(deleted);
  }

  /** Forgets the oldest handled ids beyond the count limit (walking only those, in insertion order). */
  #pruneOldest(excess: number): void {
    const deleted = statement(
      this.db,
      `DELETE FROM actions WHERE rowid IN (SELECT rowid FROM actions WHERE state = 'done' ORDER BY rowid LIMIT ?)
       RETURNING ${ROW_BYTES} AS bytes`,
    ).all(excess) as { bytes: number }[];
    this.#forgot(deleted);
  }

  /** Counts the rows a prune deleted out of the running totals. */
  #forgot(deleted: { bytes: number }[]): void {
    this.#rows! -= deleted.length;
    for (const row of deleted) this.bytes.add(-row.bytes);
  }

  /**
   * Forgets the oldest done entries whose reply left the outbox until the stored bytes are down to three quarters
   * of `journal.max-bytes`, and gives their pages back (the database has auto_vacuum=INCREMENTAL: without the vacuum the file keeps them).
   */
  #pruneBytes(): void {
    // down to three quarters: the prune, its vacuum and checkpoint then run once per quarter of the bound
    // written, not at every action once the journal is full
    let excess = this.bytes.total - Math.floor(this.#maxBytes * 3 / 4);
    let after = 0;
    let pruned = false;
    while (excess > 0) {
      const rows = statement(
        this.db,
        `SELECT rowid AS r, ${ROW_BYTES} AS bytes FROM actions
          WHERE state = 'done' AND rowid > ? AND NOT EXISTS (SELECT 1 FROM outbox WHERE action_id = actions.id)
          ORDER BY rowid LIMIT ${PRUNE_BATCH}`,
      ).all(after) as { r: number; bytes: number }[];
      if (rows.length === 0) break; // what is left is unfinished or unsent: admission.ts bounds those
      const chosen = [];
      for (const row of rows) {
        if (excess <= 0) break;
        chosen.push(row.r);
        excess -= row.bytes;
        this.bytes.add(-row.bytes);
        after = row.r;
      }
      const deleted =
        statement(this.db, "DELETE FROM actions WHERE rowid IN (SELECT value FROM json_each(?))")
          .run(JSON.stringify(chosen)).changes;
      this.#rows! -= Number(deleted);
      pruned = true;
    }
    if (!pruned) return;
    // stepped to the end: exec() stops this pragma after its first step, one page freed
    statement(this.db, "PRAGMA incremental_vacuum").all();
    // the freed pages leave the file only when the WAL is checkpointed; TRUNCATE empties the WAL too
    this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
}
