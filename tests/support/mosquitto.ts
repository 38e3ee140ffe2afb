/**
 * A real mosquitto broker for tests, configured like a DMS broker: one TLS listener on a loopback port,
 * `require_certificate` and `use_identity_as_username` (the certificate CN is the username), and an ACL under
 * which a device may only use its own topics (keyed on the client id `%c`, which is the enrollment id — the CN
 * is another id), plus the topics granted to its CN when it enrolls (actions by serial, metrics of its org).
 * The DMS service connects as CN `dms-service` and may use every topic.
 */
import { join } from "node:path";
import { Child } from "./child.ts";
import type { Issued, TestCA } from "./pki.ts";
import { freePort, waitForPort } from "./ports.ts";

/** The CN of the DMS service's client certificate. */
export const DMS_USER = "dms-service";

/** Options of {@link Mosquitto.start}. */
export interface MosquittoOptions {
  ca: TestCA;
  /** Server certificate; by default one for `localhost` / 127.0.0.1 from `ca`. */
  server?: Issued;
  port?: number;
}

/** A running mosquitto. */
export class Mosquitto {
  #child: Child | undefined;
  readonly #grants: string[] = [];

  private constructor(readonly port: number, private readonly dir: string) {}

  /** Starts mosquitto; resolves once it accepts connections. */
  static async start(options: MosquittoOptions): Promise<Mosquitto> {
    const dir = await Deno.makeTempDir({ prefix: "mosquitto-" });
    const server = options.server ??
      options.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
    await Deno.writeTextFile(join(dir, "ca.crt"), options.ca.certPem);
    await Deno.writeTextFile(join(dir, "server.crt"), server.certPem);
    await Deno.writeTextFile(join(dir, "server.key"), server.keyPem);
    const broker = new Mosquitto(options.port ?? freePort(), dir);
    await broker.#writeAcl();
    await Deno.writeTextFile(
      join(dir, "mosquitto.conf"),
      [
        "user root",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_type subscribe",
        `listener ${broker.port} 127.0.0.1`,
        `cafile ${join(dir, "ca.crt")}`,
        `certfile ${join(dir, "server.crt")}`,
        `keyfile ${join(dir, "server.key")}`,
        "require_certificate true",
        "use_identity_as_username true",
        `acl_file ${join(dir, "acl")}`,
        "",
      ].join("\n"),
    );
    await broker.restart();
    return broker;
  }

  /** Output of the current process. */
  get log(): Child | undefined {
    return this.#child;
  }

  /** Grants the device certificate `commonName` its serial's command topics and its organisation's metrics. */
  async grantDevice(commonName: string, serial: string, organizationId: string): Promise<void> {
    this.#grants.push(
      `user ${commonName}`,
      `topic read devices/actions/${serial.replace(/[^A-Za-z0-9_-]/g, "")}/#`,
      `topic write metrics/${organizationId}`,
    );
    await this.#writeAcl();
    try {
      this.#child && Deno.kill(this.#child.pid, "SIGHUP");
    } catch { /* not running */ }
  }

  /** Starts (again) on the same port, as a broker restart does; sessions are not persisted. */
  async restart(): Promise<void> {
    if (this.#child) await this.stop();
    this.#child = Child.spawn("mosquitto", ["-c", join(this.dir, "mosquitto.conf")]);
    await waitForPort(this.port);
  }

  /** Stops the broker (SIGTERM). */
  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = undefined;
  }

  /** Kills the broker without a goodbye (SIGKILL), as a crash or power cut. */
  async kill(): Promise<void> {
    await this.#child?.stop("SIGKILL");
    this.#child = undefined;
  }

  async #writeAcl(): Promise<void> {
    const rules = [
      "pattern read devices/sub/%c",
      "pattern write devices/pub/%c",
      "pattern write devices/health/%c",
      "",
      `user ${DMS_USER}`,
      "topic readwrite #",
      "",
      ...this.#grants,
      "",
    ];
    await Deno.writeTextFile(join(this.dir, "acl"), rules.join("\n"));
  }
}
