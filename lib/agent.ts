/**
 * The agent daemon: enrolls (or loads the stored enrollment), then keeps the DMS link up until stopped — or until
 * the DMS unregisters the device, after which it clears the enrollment and waits for a URL again.
 * This is where the real ports are wired; everything below takes them as arguments.
 */
import { join } from "node:path";
import { type AgentConfig, DEFAULT_NATS_PASSWORD } from "./config.ts";
import { type Clock, systemClock } from "./clock.ts";
import { DmsLink } from "./dms/link.ts";
import { CredentialsStore } from "./identity/credentials.ts";
import { Enroller } from "./identity/enroller.ts";
import { ParamsFile } from "./identity/params.ts";
import type { Logger } from "./log.ts";
import { brokerTrust } from "./mqtt/tls.ts";
import type { AgentPaths } from "./paths.ts";
import type { BackoffOptions } from "./retry.ts";
import { SnapdClient } from "./snapd/client.ts";
import { forgetEnrollment, openAgentDb } from "./store/agent_db.ts";
import { uploadStream } from "./uploads.ts";
import { writeFileAtomic } from "./files.ts";
import { Periodic } from "./periodic.ts";
import type { Enrollment } from "./identity/enrollment.ts";
import type { AgentStatus } from "./nats/api.ts";
import { NatsService } from "./nats/service.ts";
import { VERSION } from "./version.ts";

/** What the agent is built from. */
export interface AgentOptions {
  config: AgentConfig;
  paths: AgentPaths;
  log: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** How often `params` is checked while waiting for a URL, in ms. @default 2000 */
  paramsPollMs?: number;
}

/** The running agent. */
export class Agent {
  readonly #options: AgentOptions;
  readonly #clock: Clock;
  #link: DmsLink | undefined;
  #enrollment: Enrollment | undefined;
  #enroller: Enroller | undefined;
  #nats: NatsService | undefined;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** The DMS link, while enrolled. */
  get link(): DmsLink | undefined {
    return this.#link;
  }

  /** The agent's state, as `v1.iot.agent.status` reports it. */
  status(): AgentStatus {
    const enrollment = this.#enrollment;
    const link = this.#link;
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return {
      version: VERSION,
      enrolled: enrollment !== undefined,
      deviceId: enrollment?.id,
      organizationId: enrollment?.organization.id,
      enrollmentError: enrollment ? undefined : this.#enroller?.lastFailure,
      broker: enrollment
        ? {
          host: enrollment.credentials.mqttUrl,
          port: Number(enrollment.credentials.mqttPort),
          connected: link?.connected ?? false,
          connectedSince: iso(link?.session.connectedSince),
          lastError: link?.session.lastFailure,
        }
        : undefined,
      lastHealthAt: iso(link?.lastHealthAt),
      outboxDepth: link?.outboxDepth ?? 0,
      nats: {
        enabled: this.#options.config["nats.enabled"],
        connected: this.#nats?.connected ?? false,
        lastError: this.#nats?.lastError,
      },
    };
  }

  /** Writes the status file that `agent status` reads (atomically; a failure is only logged). */
  async #writeStatus(state: "running" | "stopped"): Promise<void> {
    const document = {
      ...this.status(),
      state,
      pid: Deno.pid,
      updatedAt: new Date(this.#clock.now()).toISOString(),
    };
    await writeFileAtomic(statusPath(this.#options.paths), JSON.stringify(document, null, 2) + "\n", {
      mode: 0o644,
    })
      .catch((error) => this.#options.log.debug(`status file not written: ${(error as Error).message}`));
  }

  /** Runs until `signal` aborts, then stops cleanly (MQTT DISCONNECT, files and sockets closed). */
  async run(signal: AbortSignal): Promise<void> {
    const { config, paths, log } = this.#options;
    const backoff: BackoffOptions = { initialMs: config["backoff.initial"], maxMs: config["backoff.max"] };
    const snapd = new SnapdClient({ socketPath: config["snapd.socket"], timeoutMs: config["snapd.timeout"] });
    const db = await openAgentDb(join(paths.dataDir, "agent.db"), log.child("store"));
    const params = new ParamsFile(paths, log.child("params"));
    const credentials = new CredentialsStore(paths, log.child("credentials"));
    const nats = config["nats.enabled"] ? await this.#startNats(snapd, backoff) : undefined;
    this.#nats = nats;
    const statusWriter = new Periodic(() => this.#writeStatus("running"), {
      name: "writing the status file",
      intervalMs: STATUS_PERIOD_MS,
      clock: this.#clock,
      log: log.child("status"),
    });
    statusWriter.restart();
    try {
      const enroller = new Enroller({
        snapd,
        params,
        credentials,
        log: log.child("enrollment"),
        clock: this.#clock,
        backoff,
        paramsPollMs: this.#options.paramsPollMs,
      });
      this.#enroller = enroller;
      while (!signal.aborted) {
        const enrollment = await enroller.ensureEnrolled(signal).catch((error) => {
          if (signal.aborted) return undefined;
          throw error;
        });
        if (!enrollment) return;
        this.#enrollment = enrollment;
        const unregistered = new AbortController();
        this.#link = new DmsLink({
          enrollment,
          actions: {
            snapd,
            protocol: config["dms.protocol"],
            clock: this.#clock,
            upload: uploadStream,
            allowHttpUploads: config["uploads.allow-http"],
            conflictTimeoutMs: config["snapd.conflict-timeout"],
          },
          db,
          trust: await brokerTrust({
            verify: config["mqtt.verify"],
            caFile: config["mqtt.ca"],
            organizationRoot: enrollment.organization.rootcert,
          }),
          keepaliveMs: config["mqtt.keepalive"],
          healthIntervalMs: config["health.interval"],
          metricsIntervalMs: config["metrics.interval"],
          backoff,
          log: log.child("dms"),
          clock: this.#clock,
          onUnregister: async () => {
            await credentials.clear();
            await params.remove();
            log.info("unregistered: enrollment cleared; waiting for a new identity service URL");
            this.#enrollment = undefined;
            unregistered.abort();
          },
        });
        this.#link.start();
        // `unregister` outside a snap removes the files under a running agent: notice it and start over
        const removal = new Periodic(async () => {
          if (!(await exists(paths.credentials)) && !unregistered.signal.aborted) {
            log.info(
              `${paths.credentials} was removed (unregister): leaving the DMS and waiting for a new URL`,
            );
            this.#enrollment = undefined;
            unregistered.abort();
          }
        }, {
          name: "watching the credentials file",
          intervalMs: this.#options.paramsPollMs ?? 2000,
          clock: this.#clock,
          log,
        });
        removal.restart();
        await untilAborted(AbortSignal.any([signal, unregistered.signal]));
        removal.stop();
        await this.#link.stop();
        this.#link = undefined;
        if (unregistered.signal.aborted) {
          const forgotten = forgetEnrollment(db);
          log.info("forgot the old enrollment's pending work", forgotten);
        }
      }
    } finally {
      statusWriter.stop();
      await nats?.stop();
      this.#link = undefined;
      await this.#writeStatus("stopped");
      db.close();
      snapd.close();
    }
  }

  /** Starts the local NATS API; it never delays enrollment or MQTT. */
  async #startNats(snapd: SnapdClient, backoff: BackoffOptions): Promise<NatsService> {
    const { config, log } = this.#options;
    const password = config["nats.snapd.password"];
    if (password === DEFAULT_NATS_PASSWORD) {
      log.warn(
        "nats.snapd.password is the well-known default: set your own (snap set <snap> nats.snapd.password=…)",
      );
    }
    const caFile = config["nats.ca"];
    const service = new NatsService({
      servers: config["nats.url"],
      password,
      ca: caFile ? await Deno.readTextFile(caFile) : undefined,
      ports: { snapd, status: () => this.status() },
      log: log.child("nats"),
      clock: this.#clock,
      backoff,
    });
    service.start();
    return service;
  }
}

/** How often the status file is rewritten, in ms. */
const STATUS_PERIOD_MS = 5000;

/** The status file of the agent daemon. */
export function statusPath(paths: Pick<AgentPaths, "dataDir">): string {
  return join(paths.dataDir, "status.json");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
