/**
 * Responses waiting for the broker's acknowledgement, kept in sqlite and published one at a time in order. A
 * response that could not be published (broker down, connection lost before PUBACK, agent restarted) stays first
 * in line and goes out after the next connect.
 *
 * Storage that fails never stalls it: a response the broker acknowledged but whose removal failed is not
 * published again (the process remembers it) and its removal is retried; any storage failure while draining is
 * retried on its own after a jittered backoff delay, so the outbox resumes by itself once the storage works again.
 *
 * A reply the broker keeps refusing never blocks the others: when the connection drops while an entry awaits its
 * acknowledgement {@link REFUSALS_BEFORE_SET_ASIDE} times (a broker drops a client that sends a packet over its
 * size limit), the entry is set aside — kept in the database, counted by `status` and `doctor`, no longer sent —
 * and the entries after it go out. The count is stored, so a restart does not start it over.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { Logger } from "../log.ts";
import { failpoint } from "../failpoints.ts";
import { type BackoffOptions, retry } from "../retry.ts";
import { statement } from "../store/statements.ts";
import { unsynced } from "../store/database.ts";
import { errorMessage } from "../errors.ts";
import { type StoredBytes, utf8Length } from "./stored_bytes.ts";

/** A message to publish. */
export interface OutboxEntry {
  seq: number;
  topic: string;
  payload: string;
}

/**
 * Publishes one entry; rejects when it was not acknowledged — with an error whose `inFlight` is true when the
 * entry was sent and the connection dropped before the broker acknowledged it.
 */
export type PublishEntry = (entry: OutboxEntry) => Promise<void>;

/**
 * How often the connection may drop while the same entry awaits its acknowledgement before that entry is set
 * aside: once is a network fault, three times in a row for one packet is a broker that refuses it.
 */
export const REFUSALS_BEFORE_SET_ASIDE = 3;

/** True when a publish was sent and its connection dropped before the acknowledgement (see PublishEntry). */
function lostInFlight(error: unknown): boolean {
  return (error as { inFlight?: unknown } | null)?.inFlight === true;
}

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  publish: PublishEntry;
  log: Logger;
  clock: Clock;
  /** Retries after a storage failure. */
  backoff: BackoffOptions;
  /** The running count of stored bytes (the journal's byte bound), kept up to date by adds and removals. */
  bytes?: StoredBytes;
}

/** How a drain ended. */
type Drained = "empty" | "not published";

/** An in-order, persistent, retrying publisher of responses. */
export class Outbox {
  #flushing: Promise<void> | undefined;
  readonly #waiters = new Map<number, () => void>();
  /** Entries the broker acknowledged whose removal from the database has not succeeded yet. */
  readonly #acknowledged = new Set<number>();
  readonly #storage: FailureLog;
  readonly #stopping = new AbortController();

  constructor(private readonly db: DatabaseSync, private readonly options: OutboxOptions) {
    this.#storage = new FailureLog(options.log, "publishing stored responses");
  }

  /** Responses not yet acknowledged. */
  get depth(): number {
    return (statement(this.db, "SELECT COUNT(*) AS n FROM outbox WHERE set_aside_at IS NULL").get() as {
      n: number;
    }).n - this.#acknowledged.size;
  }

  /** Responses set aside because the broker kept refusing them (kept, no longer sent). */
  get setAside(): number {
    return (statement(this.db, "SELECT COUNT(*) AS n FROM outbox WHERE set_aside_at IS NOT NULL").get() as {
      n: number;
    }).n;
  }

  /** Queues an entry (outside an action: e.g. a stored response sent again); returns its sequence number. */
  add(topic: string, payload: string): number {
    // not synced: a stored response asked for again; lost by a power cut, the DMS asks again
    const result = unsynced(
      this.db,
      () => statement(this.db, "INSERT INTO outbox (topic, payload) VALUES (?, ?)").run(topic, payload),
    );
    this.options.bytes?.add(utf8Length(payload));
    return Number(result.lastInsertRowid);
  }

  /** Resolves once entry `seq` has been acknowledged (at once if it is no longer queued). */
  acknowledged(seq: number): Promise<void> {
    if (this.#acknowledged.has(seq)) return Promise.resolve();
    if (!statement(this.db, "SELECT 1 FROM outbox WHERE seq = ?").get(seq)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.set(seq, resolve));
  }

  /**
   * Publishes queued entries in order until one is not acknowledged or none is left; concurrent calls share one
   * run. Never rejects: a storage failure is logged and the run tried again after a backoff delay, by itself.
   */
  flush(): Promise<void> {
    this.#flushing ??= retry(() => this.#drain(), {
      ...this.options.backoff,
      clock: this.options.clock,
      signal: this.#stopping.signal,
      onRetry: (error, delay) => this.#storage.failed(errorMessage(error), delay),
    }).then(
      (drained) => {
        this.#flushing = undefined;
        this.#storage.succeeded();
        // an entry added while the last run was finishing would otherwise wait for the next connect
        if (drained === "empty" && this.#hasQueued()) return this.flush();
      },
      () => {
        this.#flushing = undefined; // stopped
      },
    );
    return this.#flushing;
  }

  /** Stops retrying after storage failures. */
  stop(): void {
    this.#stopping.abort();
  }

  #hasQueued(): boolean {
    try {
      return this.depth > 0;
    } catch {
      return false; // the next flush (a connect, an answer) looks again
    }
  }

  /**
   * Counts one more dropped connection while `entry` was in flight; returns true once it is set aside (the drain
   * goes on with the next entry, which waits for the next connection like any other).
   */
  #refused(entry: OutboxEntry): boolean {
    // not synced: a count lost by a power cut only costs one more try
    const row = unsynced(
      this.db,
      () =>
        statement(this.db, "UPDATE outbox SET refusals = refusals + 1 WHERE seq = ? RETURNING refusals")
          .get(entry.seq) as { refusals: number } | undefined,
    );
    if (!row || row.refusals < REFUSALS_BEFORE_SET_ASIDE) return false;
    unsynced(
      this.db,
      () =>
        statement(this.db, "UPDATE outbox SET set_aside_at = ? WHERE seq = ?").run(
          this.options.clock.now(),
          entry.seq,
        ),
    );
    this.options.log.error(
      `a response was set aside: the broker dropped the connection each of the ${row.refusals} times it was sent ` +
        `(is it larger than the broker accepts? lower mqtt.max-reply-bytes); the responses after it go out`,
      { seq: entry.seq, topic: entry.topic, bytes: new TextEncoder().encode(entry.payload).length },
    );
    return true;
  }

  /** Publishes until empty or until a publish fails. @throws when the storage fails */
  async #drain(): Promise<Drained> {
    for (;;) {
      const entry = statement(
        this.db,
        "SELECT seq, topic, payload FROM outbox WHERE set_aside_at IS NULL ORDER BY seq LIMIT 1",
      ).get() as OutboxEntry | undefined;
      if (!entry) return "empty";
      if (!this.#acknowledged.has(entry.seq)) {
        try {
          await this.options.publish(entry);
        } catch (error) {
          if (lostInFlight(error) && this.#refused(entry)) continue;
          this.options.log.debug(`response kept for the next connection: ${errorMessage(error)}`);
          return "not published";
        }
        this.#acknowledged.add(entry.seq);
        this.#waiters.get(entry.seq)?.();
        this.#waiters.delete(entry.seq);
        failpoint("acknowledged");
      }
      // not synced: a power cut that loses this sends the reply again, byte for byte (the broker took it once)
      unsynced(this.db, () => statement(this.db, "DELETE FROM outbox WHERE seq = ?").run(entry.seq));
      this.options.bytes?.add(-utf8Length(entry.payload));
      this.#acknowledged.delete(entry.seq);
      this.options.log.debug("response acknowledged by the broker", { seq: entry.seq, topic: entry.topic });
    }
  }
}
