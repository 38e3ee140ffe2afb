/**
 * Responses waiting for the broker's acknowledgement, published one at a time in order. A response that could
 * not be published (broker down, connection lost before PUBACK) stays first in line and goes out after the next
 * connect.
 */
import type { Logger } from "../log.ts";

/** A message to publish. */
export interface OutboxEntry {
  topic: string;
  payload: string;
}

/** Publishes one entry; rejects when it was not acknowledged. */
export type PublishEntry = (entry: OutboxEntry) => Promise<void>;

/** An in-order, retrying publisher of responses. */
export class Outbox {
  readonly #entries: OutboxEntry[] = [];
  #flushing: Promise<void> | undefined;

  constructor(private readonly publish: PublishEntry, private readonly log: Logger) {}

  /** Responses not yet acknowledged. */
  get depth(): number {
    return this.#entries.length;
  }

  /** Queues an entry and tries to publish it. */
  add(entry: OutboxEntry): void {
    this.#entries.push(entry);
    void this.flush();
  }

  /** Publishes queued entries in order until one fails or none is left; concurrent calls share one run. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().then((drained) => {
      this.#flushing = undefined;
      // an entry added while the last run was finishing would otherwise wait for the next connect
      if (drained && this.#entries.length > 0) return this.flush();
    });
    return this.#flushing;
  }

  /** Publishes until empty (true) or until a publish fails (false). */
  async #drain(): Promise<boolean> {
    while (this.#entries.length > 0) {
      try {
        await this.publish(this.#entries[0]);
      } catch (error) {
        this.log.debug(`response kept for the next connection: ${(error as Error).message}`, {
          depth: this.depth,
        });
        return false;
      }
      this.#entries.shift();
    }
    return true;
  }
}
