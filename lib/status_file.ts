/**
 * A daemon's status file (what `agent status` reads). It is rewritten — atomically, 0600 like every file of the agent — when
 * something a reader would see changes, and otherwise only to refresh its "last seen" fields (times, memory) at
 * most once per `refreshMs`: on an idle device it costs one small write a minute instead of one every few
 * seconds, because flash wears and small boards matter.
 */
import type { Clock } from "./clock.ts";
import { writeFileAtomic } from "./files.ts";
import type { Logger } from "./log.ts";

/** Options of {@link StatusFile}. */
export interface StatusFileOptions<T> {
  path: string;
  /** The part of a document whose change a reader would notice; the rest only refreshes. */
  visible(document: T): unknown;
  /** Longest time between two writes while nothing visible changes, in ms. @default 60000 */
  refreshMs?: number;
  clock: Clock;
  log: Logger;
}

/** One status file. */
export class StatusFile<T> {
  readonly #options: StatusFileOptions<T>;
  #written: { visible: string; at: number } | undefined;

  constructor(options: StatusFileOptions<T>) {
    this.#options = options;
  }

  /** Offers the current document; writes it when it should (see above), or when `force` is set. */
  async update(document: T, force = false): Promise<void> {
    const { path, clock, log, refreshMs = 60_000 } = this.#options;
    const visible = JSON.stringify(this.#options.visible(document));
    const now = clock.now();
    const due = !this.#written || this.#written.visible !== visible || now - this.#written.at >= refreshMs;
    if (!due && !force) return;
    try {
      // not synced: a power cut may bring back the previous status, which the daemon rewrites at its next start
      await writeFileAtomic(path, JSON.stringify(document, null, 2) + "\n", { durable: false });
      this.#written = { visible, at: now };
    } catch (error) {
      log.debug(`status file not written: ${(error as Error).message}`);
    }
  }
}
