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

/** A listener for devices apart from the DMS's, e.g. on another address or with another certificate. */
export interface DeviceListener {
  /** Loopback address to listen on: `127.0.0.1` or `::1`. */
  address: string;
  /** Its server certificate (the names under test). */
  server: Issued;
}

/** Options of {@link Mosquitto.start}. */
export interface MosquittoOptions {
  ca: TestCA;
  /** Server certificate; by default one for `localhost` / 127.0.0.1 from `ca`. */
  server?: Issued;
  port?: number;
  /** Devices connect here instead of to the DMS's listener. @default the DMS's listener */
  device?: DeviceListener;
}

/** A running mosquitto. */
export class Mosquitto {
  #child: Child | undefined;
  #listeners: { address: string; port: number }[] = [];
  readonly #grants: string[] = [];

  /**
   * @param port the DMS's listener, on 127.0.0.1
   * @param devicePort the devices' listener (the same one unless a device listener was asked for)
   */
  private constructor(readonly port: number, readonly devicePort: number, private readonly dir: string) {}

  /** Starts mosquitto; resolves once it accepts connections. */
  static async start(options: MosquittoOptions): Promise<Mosquitto> {
    const dir = await Deno.makeTempDir({ prefix: "mosquitto-" });
    const server = options.server ??
      options.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
    await Deno.writeTextFile(join(dir, "ca.crt"), options.ca.certPem);
    await Deno.writeTextFile(join(dir, "server.crt"), server.certPem);
    await Deno.writeTextFile(join(dir, "server.key"), server.keyPem);
    const port = options.port ?? freePort();
    const broker = new Mosquitto(port, options.device ? freePort(options.device.address) : port, dir);
    await broker.#writeAcl();
    const tls = (prefix: string) => [
      `cafile ${join(dir, "ca.crt")}`,
      `certfile ${join(dir, `${prefix}.crt`)}`,
      `keyfile ${join(dir, `${prefix}.key`)}`,
      "require_certificate true",
      "use_identity_as_username true",
    ];
    const device = options.device;
    if (device) {
      await Deno.writeTextFile(join(dir, "device.crt"), device.server.certPem);
      await Deno.writeTextFile(join(dir, "device.key"), device.server.keyPem);
    }
    broker.#listeners = [
      { address: "127.0.0.1", port },
      ...device ? [{ address: device.address, port: broker.devicePort }] : [],
    ];
    await Deno.writeTextFile(
      join(dir, "mosquitto.conf"),
      [
        "user root",
        "persistence false",
        "per_listener_settings false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_type subscribe",
        `acl_file ${join(dir, "acl")}`,
        `listener ${port} 127.0.0.1`,
        ...tls("server"),
        ...device ? [`listener ${broker.devicePort} ${device.address}`, ...tls("device")] : [],
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
    for (const { address, port } of this.#listeners) await waitForPort(port, address);
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
