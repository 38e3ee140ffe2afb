/**
 * A daemon's status file (what `agent status` reads). It is rewritten — atomically, 0600 like every file of the agent — when
 * something a reader would see changes, and otherwise only to refresh its "last seen" fields (times, memory) at
 * most once per `refreshMs`: on an idle device it costs one small write a minute instead of one every few
 * seconds, because flash wears and small boards matter. A file someone else replaced, truncated or removed is
 * rewritten at the next offer (its inode, size and time are looked at: a `stat`, no read, no write).
 */
import type { Clock } from "./clock.ts";
import { writeFileAtomic } from "./files.ts";
import type { Logger } from "./log.ts";
import { errorMessage } from "./errors.ts";

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
  #written: { visible: string; at: number; file: string } | undefined;

  constructor(options: StatusFileOptions<T>) {
    this.#options = options;
  }

  /** Offers the current document; writes it when it should (see above), or when `force` is set. */
  async update(document: T, force = false): Promise<void> {
    const { path, clock, log, refreshMs = 60_000 } = this.#options;
    const visible = JSON.stringify(this.#options.visible(document));
    const now = clock.monotonic();
    const due = force || !this.#written || this.#written.visible !== visible ||
      now - this.#written.at >= refreshMs || await fingerprint(path) !== this.#written.file;
    if (!due) return;
    try {
      // not synced: a power cut may bring back the previous status, which the daemon rewrites at its next start
      await writeFileAtomic(path, JSON.stringify(document, null, 2) + "\n", { durable: false });
      this.#written = { visible, at: now, file: await fingerprint(path) };
    } catch (error) {
      log.debug(`status file not written: ${errorMessage(error)}`);
    }
  }
}

/** What tells one version of a file from another without reading it: inode, size, modification time. */
async function fingerprint(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    return `${info.ino}:${info.size}:${info.mtime?.getTime()}`;
  } catch {
    return "absent";
  }
}
