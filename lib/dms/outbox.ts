/**
 * Responses waiting for the broker's acknowledgement, kept in sqlite and published one at a time in order. A
 * response that could not be published (broker down, connection lost before PUBACK, agent restarted) stays first
 * in line and goes out after the next connect.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Logger } from "../log.ts";
import { failpoint } from "../failpoints.ts";
import { statement } from "../store/statements.ts";

/** A message to publish. */
export interface OutboxEntry {
  seq: number;
  topic: string;
  payload: string;
}

/** Publishes one entry; rejects when it was not acknowledged. */
export type PublishEntry = (entry: OutboxEntry) => Promise<void>;

/** An in-order, persistent, retrying publisher of responses. */
export class Outbox {
  #flushing: Promise<void> | undefined;
  readonly #waiters = new Map<number, () => void>();

  constructor(
    private readonly db: DatabaseSync,
    private readonly publish: PublishEntry,
    private readonly log: Logger,
  ) {}

  /** Responses not yet acknowledged. */
  get depth(): number {
    return (statement(this.db, "SELECT COUNT(*) AS n FROM outbox").get() as { n: number }).n;
  }

  /** Queues an entry (outside an action: e.g. a stored response sent again); returns its sequence number. */
  add(topic: string, payload: string): number {
    const result = statement(this.db, "INSERT INTO outbox (topic, payload) VALUES (?, ?)").run(
      topic,
      payload,
    );
    return Number(result.lastInsertRowid);
  }

  /** Resolves once entry `seq` has been acknowledged (at once if it is no longer queued). */
  acknowledged(seq: number): Promise<void> {
    if (!statement(this.db, "SELECT 1 FROM outbox WHERE seq = ?").get(seq)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.set(seq, resolve));
  }

  /** Publishes queued entries in order until one fails or none is left; concurrent calls share one run. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().then((drained) => {
      this.#flushing = undefined;
      // an entry added while the last run was finishing would otherwise wait for the next connect
      if (drained && this.depth > 0) return this.flush();
    });
    return this.#flushing;
  }

  /** Publishes until empty (true) or until a publish fails (false). */
  async #drain(): Promise<boolean> {
    for (;;) {
      const entry = statement(this.db, "SELECT seq, topic, payload FROM outbox ORDER BY seq LIMIT 1").get() as
        | OutboxEntry
        | undefined;
      if (!entry) return true;
      try {
        await this.publish(entry);
      } catch (error) {
        this.log.debug(`response kept for the next connection: ${(error as Error).message}`, {
          depth: this.depth,
        });
        return false;
      }
      failpoint("acknowledged");
      statement(this.db, "DELETE FROM outbox WHERE seq = ?").run(entry.seq);
      this.log.debug("response acknowledged by the broker", { seq: entry.seq, topic: entry.topic });
      this.#waiters.get(entry.seq)?.();
      this.#waiters.delete(entry.seq);
    }
  }
}
