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
import { openAgentDb } from "./store/agent_db.ts";
import { uploadStream } from "./uploads.ts";
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
    };
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
        await untilAborted(AbortSignal.any([signal, unregistered.signal]));
        await this.#link.stop();
        this.#link = undefined;
      }
    } finally {
      await nats?.stop();
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

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
