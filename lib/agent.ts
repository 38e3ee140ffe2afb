/**
 * The agent daemon: enrolls (or loads the stored enrollment), then keeps the DMS link up until stopped — or until
 * the DMS unregisters the device, after which it clears the enrollment and waits for a URL again. Every real
 * port (snapd, the database, the broker session factory, the local API, the clock) comes in from `main.ts`.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Upload } from "./actions/context.ts";
import type { Clock } from "./clock.ts";
import type { AgentConfig } from "./settings.ts";
import { DmsLink, type OpenSession } from "./dms/link.ts";
import type { ReadMetrics } from "./dms/telemetry.ts";
import type { CredentialsStore } from "./identity/credentials.ts";
import { Enroller } from "./identity/enroller.ts";
import type { Enrollment } from "./identity/enrollment.ts";
import type { ParamsFile } from "./identity/params.ts";
import type { Logger } from "./log.ts";
import type { AgentStatus } from "./agent_status.ts";
import { type AgentPaths, agentStatusPath } from "./paths.ts";
import { operatorHints } from "./operator_hints.ts";
import { Liveness } from "./liveness.ts";
import type { Health, SnapHealth } from "./snap_health.ts";
import { Periodic } from "./periodic.ts";
import { statement } from "./store/statements.ts";
import type { Notifier } from "./system/sd_notify.ts";
import { StatusFile } from "./status_file.ts";
import type { AgentStatusFile } from "./status_report.ts";
import type { ProcessIdentity } from "./system/process.ts";
import type { BackoffOptions } from "./retry.ts";
import type { SnapdPort } from "./snapd/port.ts";
import { processMemory } from "./system/memory.ts";
import { forgetEnrollment } from "./store/agent_db.ts";
import { VERSION } from "./version.ts";
import type { WatchRemoval } from "./adapters/file_watch.ts";
import type { RequestEnrollment } from "./identity/enroll_request.ts";
import type { ChangeFailure } from "./dms/snap_order.ts";

/** The local API as the agent sees it. */
export interface LocalApi {
  readonly connected: boolean;
  readonly lastError: string | undefined;
  /** Why every write subject is refused (the published default password), if it is. */
  readonly writeRefusal?: string;
  stop(): Promise<void>;
}

/** The real things the agent works through; `main.ts` builds them. */
export interface AgentPorts {
  snapd: SnapdPort;
  /** The agent database (journal, outbox, required snaps), open. */
  db: DatabaseSync;
  params: ParamsFile;
  credentials: CredentialsStore;
  openSession: OpenSession;
  upload: Upload;
  readMetrics: ReadMetrics;
  clock: Clock;
  /** Starts the local API, when it is enabled. */
  startLocalApi?: (status: () => AgentStatus) => LocalApi;
  /** systemd's notification socket, when systemd started the daemon. */
  notifier?: Notifier;
  /** The snap's health in snapd (`snapctl set-health`), inside a snap. */
  snapHealth?: SnapHealth;
  /** Sends the enroll request to the identity service. */
  requestEnrollment: RequestEnrollment;
  /** Calls back once a file is removed (`unregister` outside a snap removes `.secret` under a running agent). */
  watchRemoval: WatchRemoval;
}

/** What the agent is built from. */
export interface AgentOptions {
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  ports: AgentPorts;
  /** How often `params` is checked while waiting for a URL, in ms. @default 2000 */
  paramsPollMs?: number;
  /** This process, as the status file names it (so `status` can tell whether it still runs). */
  identity: ProcessIdentity;
}

/** The running agent. */
export class Agent {
  readonly #options: AgentOptions;
  #link: DmsLink | undefined;
  #enrollment: Enrollment | undefined;
  #enroller: Enroller | undefined;
  /** Between an unregister and the old enrollment's work forgotten. */
  #leaving = false;
  #localApi: LocalApi | undefined;
  readonly #statusFile: StatusFile<AgentStatusFile>;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#statusFile = new StatusFile({
      path: agentStatusPath(options.paths),
      // times and memory change all the time: they only refresh the file now and then
      visible: ({ updatedAt: _updatedAt, lastHealthAt, memory: _memory, ...seen }) => ({
        ...seen,
        healthSent: lastHealthAt !== undefined,
      }),
      clock: options.ports.clock,
      log: options.log.child("status"),
    });
  }

  /** The DMS link, while enrolled. */
  get link(): DmsLink | undefined {
    return this.#link;
  }

  /**
   * The last resort after an error nothing handled: drops the broker connection and connects again (after the
   * usual backoff), so a wedged link comes back. Actions in progress are not touched.
   */
  recover(reason: string): void {
    this.#link?.restart(`recovering from an unexpected error (${reason})`);
  }

  /**
   * The agent's health for snapd: an error when it had no broker for longer than `health.unreachable-error`, or
   * cannot write its database; okay otherwise (waiting for a URL included).
   */
  health(): Health {
    const link = this.#link;
    const storage = link?.storageProblem;
    if (storage) {
      return { status: "error", code: "storage-failing", message: `cannot write its database: ${storage}` };
    }
    const down = link?.session?.downForMs ?? 0;
    if (link && down > this.#options.config["health.unreachable-error"]) {
      const minutes = Math.round(down / 60_000);
      return {
        status: "error",
        code: "broker-unreachable",
        message: `no broker for ${minutes} min: ${link.session?.lastFailure ?? "not connected"}`,
      };
    }
    return { status: "okay" };
  }

  /** The agent's state, as `v1.iot.agent.status` reports it. */
  status(): AgentStatus {
    const enrollment = this.#enrollment;
    const link = this.#link;
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return {
      version: VERSION,
      phase: this.#leaving ? "leaving" : enrollment ? "serving" : this.#enroller?.phase ?? "starting",
      enrolled: enrollment !== undefined,
      deviceId: enrollment?.id,
      organizationId: enrollment?.organization.id,
      enrollmentError: enrollment ? undefined : this.#enroller?.lastFailure,
      broker: enrollment
        ? {
          host: enrollment.credentials.mqttUrl,
          port: Number(enrollment.credentials.mqttPort),
          connected: link?.connected ?? false,
          connectedSince: iso(link?.session?.connectedSince),
          lastError: link?.session?.lastFailure,
        }
        : undefined,
      lastHealthAt: iso(link?.lastHealthAt),
      outboxDepth: link?.outboxDepth ?? 0,
      ...(link?.setAsideReplies ? { setAsideReplies: link.setAsideReplies } : {}),
      ...(link?.changeFailure ? { failedChanges: failedChanges(link.changeFailure) } : {}),
      nats: {
        enabled: this.#options.config["nats.enabled"],
        connected: this.#localApi?.connected ?? false,
        lastError: this.#localApi?.lastError,
        writesRefused: this.#localApi?.writeRefusal,
      },
      memory: processMemory(),
    };
  }

  /** Runs until `signal` aborts, then stops cleanly (MQTT DISCONNECT, the local API closed). */
  async run(signal: AbortSignal): Promise<void> {
    const { config, log, ports } = this.#options;
    const backoff: BackoffOptions = { initialMs: config["backoff.initial"], maxMs: config["backoff.max"] };
    this.#localApi = ports.startLocalApi?.(() => this.status());
    const statusWriter = new Periodic(async () => {
      await this.#writeStatus("running");
      await ports.snapHealth?.report(this.health());
    }, {
      name: "writing the status file",
      intervalMs: STATUS_PERIOD_MS,
      clock: ports.clock,
      log: log.child("status"),
    });
    statusWriter.restart();
    const liveness = ports.notifier && this.#liveness(ports.notifier);
    await liveness?.ready();
    try {
      const enroller = new Enroller({
        snapd: ports.snapd,
        params: ports.params,
        credentials: ports.credentials,
        log: log.child("enrollment"),
        clock: ports.clock,
        backoff,
        paramsPollMs: this.#options.paramsPollMs,
        setUrlHint: operatorHints(this.#options.paths).setUrl,
        request: ports.requestEnrollment,
      });
      this.#enroller = enroller;
      while (!signal.aborted) {
        const enrollment = await enroller.ensureEnrolled(signal).catch((error) => {
          if (signal.aborted) return undefined;
          throw error;
        });
        if (!enrollment) return;
        await this.#serve(enrollment, backoff, signal);
      }
    } finally {
      statusWriter.stop();
      await liveness?.stop();
      await this.#localApi?.stop();
      this.#link = undefined;
      await this.#writeStatus("stopped");
    }
  }

  /** Keeps the link of one enrollment up until stopped or unregistered. */
  async #serve(enrollment: Enrollment, backoff: BackoffOptions, signal: AbortSignal): Promise<void> {
    const { config, paths, log, ports } = this.#options;
    this.#enrollment = enrollment;
    const unregistered = new AbortController();
    const leave = (message: string) => {
      if (unregistered.signal.aborted) return;
      log.info(message);
      this.#enrollment = undefined;
      this.#leaving = true;
      unregistered.abort();
    };
    const link = new DmsLink({
      enrollment,
      openSession: ports.openSession,
      actions: {
        snapd: ports.snapd,
        protocol: config["dms.protocol"],
        clock: ports.clock,
        upload: ports.upload,
        allowHttpUploads: config["uploads.allow-http"],
        conflictTimeoutMs: config["snapd.conflict-timeout"],
      },
      db: ports.db,
      readMetrics: ports.readMetrics,
      healthIntervalMs: config["health.interval"],
      metricsIntervalMs: config["metrics.interval"],
      backoff,
      log: log.child("dms"),
      maxReplyBytes: config["mqtt.max-reply-bytes"],
      waiting: { maxActions: config["actions.max-waiting"], maxBytes: config["actions.max-waiting-bytes"] },
      journalMaxBytes: config["journal.max-bytes"],
      onUnregister: async () => {
        await ports.credentials.clear();
        await ports.params.remove();
        leave("unregistered: enrollment cleared; waiting for a new identity service URL");
      },
    });
    this.#link = link;
    await link.start();
    // `unregister` outside a snap removes the files under a running agent: notice it (inotify, no polling) and
    // start over
    const watcher = ports.watchRemoval(
      paths.credentials,
      () => leave(`${paths.credentials} was removed (unregister): leaving the DMS and waiting for a new URL`),
    );
    await untilAborted(AbortSignal.any([signal, unregistered.signal]));
    watcher.close();
    await link.stop();
    this.#link = undefined;
    if (unregistered.signal.aborted) {
      log.info("forgot the old enrollment's pending work", forgetEnrollment(ports.db));
    }
    this.#leaving = false;
  }

  /**
   * The agent's proof of life for systemd's watchdog: its database answers, and its broker link made progress
   * within two keep-alives and the longest backoff (a link that did not is wedged, though the process runs).
   */
  #liveness(notifier: Notifier): Liveness {
    const { config, ports, log } = this.#options;
    const stallMs = 2 * config["mqtt.keepalive"] + config["backoff.max"] + STALL_SLACK_MS;
    return new Liveness({
      notifier,
      clock: ports.clock,
      log: log.child("systemd"),
      checks: {
        "the agent database": () => {
          statement(ports.db, "SELECT COUNT(*) AS n FROM outbox").get();
          return undefined;
        },
        "the broker link": () => {
          const idle = this.#link?.session?.idleMs ?? 0;
          return idle > stallMs ? `no progress for ${Math.round(idle / 1000)} s` : undefined;
        },
      },
    });
  }

  /** Offers the status file its current document (it writes when a reader would see a change). */
  async #writeStatus(state: "running" | "stopped"): Promise<void> {
    const document: AgentStatusFile = {
      ...this.status(),
      state,
      ...this.#options.identity,
      updatedAt: new Date(this.#options.ports.clock.now()).toISOString(),
    };
    await this.#statusFile.update(document, state === "stopped");
  }
}

/** Beyond two keep-alives and the longest backoff, how long a broker link may make no progress, in ms. */
const STALL_SLACK_MS = 10_000;

/** How often the status is looked at (the file is written only when it changed, or once a minute), in ms. */
const STATUS_PERIOD_MS = 5000;

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** A failed change as the status shows it. */
function failedChanges(failure: ChangeFailure): NonNullable<AgentStatus["failedChanges"]> {
  const { count, changeId, id, snap, error } = failure;
  return { count, last: { changeId, actionId: id, snap, error } };
}
