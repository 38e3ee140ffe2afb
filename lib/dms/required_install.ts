/**
 * required-install: the DMS publishes on `devices/actions/<sanitized serial>/required-install` the snaps the
 * device's model requires and the device lacks — `{"id","snaps":[{"name","channel","track"}]}`, a single snap
 * object, or a bare array. The latest message is the pending set (persisted); each pending snap that is not
 * installed is installed (from `latest/stable` unless a channel is given), failures are retried with backoff,
 * two installs of one snap never run at once (they share the per-snap action queue), and every decision is
 * logged. The DMS learns the outcome from the health hashes and `list`.
 */
import type { DatabaseSync } from "node:sqlite";
import { isChannel, isRisk, isSnapName } from "../actions/validation.ts";
import type { Clock } from "../clock.ts";
import type { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import { type BackoffOptions, retry } from "../retry.ts";
import { waitForChange } from "../snapd/change_wait.ts";
import type { SnapdPort } from "../snapd/port.ts";
import { SnapdError } from "../snapd/error.ts";
import { statement } from "../store/statements.ts";
import { errorMessage } from "../errors.ts";

/** A snap to install and its channel. */
export interface RequiredSnap {
  name: string;
  channel: string;
}

/** The default channel. */
export const DEFAULT_CHANNEL = "latest/stable";

/**
 * The channel of one entry. The DMS sends `channel:"latest", track:"stable"` (track and risk swapped); snapd-style
 * `channel:"latest/stable"`, `channel:"stable"`, `track`+`risk` are accepted too.
 */
export function requiredChannel(entry: { channel?: unknown; track?: unknown; risk?: unknown }): string {
  const text = (value: unknown) => (typeof value === "string" ? value.trim() : "");
  const channel = text(entry.channel);
  const track = text(entry.track);
  const risk = text(entry.risk);
  let result: string;
  if (channel.includes("/")) result = channel;
  else if (channel && track) result = isRisk(channel) ? `${track}/${channel}` : `${channel}/${track}`;
  else if (track && risk) result = `${track}/${risk}`;
  else if (channel) result = isRisk(channel) ? `latest/${channel}` : `${channel}/stable`;
  else if (track) result = isRisk(track) ? `latest/${track}` : `${track}/stable`;
  else result = DEFAULT_CHANNEL;
  if (!isChannel(result)) throw new TypeError(`invalid channel "${result}"`);
  return result;
}

/** Parses a required-install payload in any of its three forms. @throws {TypeError} */
export function parseRequiredInstall(payload: Uint8Array): RequiredSnap[] {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(payload));
  } catch (error) {
    throw new TypeError(`not JSON: ${errorMessage(error)}`);
  }
  const entries = Array.isArray(value)
    ? value
    : typeof value === "object" && value !== null && Array.isArray((value as { snaps?: unknown }).snaps)
    ? (value as { snaps: unknown[] }).snaps
    : typeof value === "object" && value !== null && "name" in value
    ? [value]
    : undefined;
  if (!entries) throw new TypeError('expected {"snaps":[…]}, a snap object or an array of snaps');
  return entries.map((entry, index) => {
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(`snap ${index + 1} is not an object`);
    }
    const { name } = entry as { name?: unknown };
    if (typeof name !== "string" || !isSnapName(name)) {
      throw new TypeError(`snap ${index + 1} has no valid "name"`);
    }
    return { name, channel: requiredChannel(entry as Record<string, unknown>) };
  });
}

/** What the installer needs. */
export interface RequiredInstallerOptions {
  db: DatabaseSync;
  snapd: Pick<SnapdPort, "snap" | "snapAction" | "change">;
  /** The per-snap queue shared with DMS actions. */
  queue: KeyedQueue;
  log: Logger;
  clock: Clock;
  backoff: BackoffOptions;
  conflictTimeoutMs: number;
  /** How often a running install's change is polled, in ms. @default 1000 */
  pollMs?: number;
}

/** Keeps the required snaps installed. */
export class RequiredInstaller {
  readonly #options: RequiredInstallerOptions;
  readonly #running = new Set<string>();
  #stopping = new AbortController();

  constructor(options: RequiredInstallerOptions) {
    this.#options = options;
  }

  /** Snaps still pending, by name. */
  pending(): RequiredSnap[] {
    return statement(this.#options.db, "SELECT name, channel FROM required_snaps ORDER BY requested_at, name")
      .all() as unknown as RequiredSnap[];
  }

  /** Resumes the persisted pending set. */
  start(): void {
    this.#stopping = new AbortController();
    for (const snap of this.pending()) this.#ensure(snap.name);
  }

  /** Stops retrying (an install in progress in snapd goes on). */
  stop(): void {
    this.#stopping.abort();
  }

  /** Handles one message from the DMS: it replaces the pending set. */
  receive(payload: Uint8Array): void {
    const { db, log, clock } = this.#options;
    let snaps: RequiredSnap[];
    try {
      snaps = parseRequiredInstall(payload);
    } catch (error) {
      log.warn(`ignoring a required-install message: ${errorMessage(error)}`);
      return;
    }
    log.info(`required snaps: ${snaps.map((s) => `${s.name} (${s.channel})`).join(", ") || "none"}`);
    const names = new Set(snaps.map((s) => s.name));
    for (const stale of this.pending().filter((s) => !names.has(s.name))) {
      log.info(`${stale.name} is no longer required by the DMS: not installing it`);
      statement(db, "DELETE FROM required_snaps WHERE name = ?").run(stale.name);
    }
    for (const snap of snaps) {
      statement(
        db,
        `INSERT INTO required_snaps (name, channel, requested_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET channel = excluded.channel`,
      ).run(snap.name, snap.channel, clock.now());
      this.#ensure(snap.name);
    }
  }

  /** Starts the install loop of a snap unless one runs. */
  #ensure(name: string): void {
    if (this.#running.has(name)) return;
    this.#running.add(name);
    this.#loop(name).finally(() => this.#running.delete(name));
  }

  /** Installs `name` until it is installed or no longer required, retrying with backoff. */
  async #loop(name: string): Promise<void> {
    const { db, log, clock, queue } = this.#options;
    const signal = this.#stopping.signal;
    await retry(async () => {
      const wanted = this.pending().find((s) => s.name === name);
      if (!wanted) return;
      await queue.run(name, () => this.#installOnce(wanted));
      if (signal.aborted) return; // the database may be closed; the next start checks again
      statement(db, "DELETE FROM required_snaps WHERE name = ?").run(name);
    }, {
      ...this.#options.backoff,
      clock,
      signal,
      onRetry: (error, delay) => {
        const message = errorMessage(error);
        statement(db, "UPDATE required_snaps SET attempts = attempts + 1, last_error = ? WHERE name = ?").run(
          message,
          name,
        );
        log.warn(`installing required snap ${name} failed: ${message}`, {
          retry_in: `${Math.round(delay)}ms`,
        });
      },
    }).catch(() => {}); // stopped
  }

  /** Installs one snap unless it is installed; resolves when snapd's change is done. */
  async #installOnce(snap: RequiredSnap): Promise<void> {
    const { snapd, log, clock } = this.#options;
    try {
      await snapd.snap(snap.name);
      log.info(`${snap.name} is already installed: skipping`);
      return;
    } catch (error) {
      if (!(error instanceof SnapdError) || error.status !== 404) throw error;
    }
    log.info(`installing required snap ${snap.name} from ${snap.channel}`);
    const changeId = await retry(() => snapd.snapAction(snap.name, "install", { channel: snap.channel }), {
      clock,
      initialMs: 500,
      maxMs: 10_000,
      budgetMs: this.#options.conflictTimeoutMs,
      shouldRetry: (error) => error instanceof SnapdError && error.isConflict,
    });
    const pollMs = this.#options.pollMs ?? 1000;
    const outcome = await waitForChange(snapd, changeId, {
      clock,
      poll: { initialMs: pollMs, maxMs: pollMs, random: () => 1 },
      signal: this.#stopping.signal,
      onReadError: (error) => log.debug(`reading change ${changeId} failed: ${error.message}`),
    });
    if (outcome.kind !== "ready") throw new Error(`change ${changeId} is no longer known to snapd`);
    const { change } = outcome;
    if (change.status !== "Done") {
      throw new Error(`change ${changeId} ended ${change.status}: ${change.err ?? "no reason given"}`);
    }
    log.info(`required snap ${snap.name} installed (change ${changeId})`);
  }
}
