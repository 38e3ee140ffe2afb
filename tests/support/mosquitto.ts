/**
 * A real mosquitto broker for tests, configured like a DMS broker: one TLS listener on a loopback port,
 * `require_certificate` and `use_identity_as_username` (the certificate CN is the username), and an ACL under
 * which a device may only use its own topics (keyed on the client id `%c`, which is the enrollment id — the CN
 * is another id), plus the topics granted to its CN when it enrolls (actions by serial, metrics of its org).
 * The DMS service connects as CN `dms-service` and may use every topic.
 *
 * Two ACL engines: mosquitto's `acl_file` (the default; it never refuses a SUBSCRIBE, it only withholds
 * messages) and its dynamic-security plugin, whose ACLs refuse a subscription with SUBACK 0x80 — what a DMS
 * broker does when a device is not (yet) allowed a topic.
 */
import { join } from "node:path";
import mqtt from "mqtt";
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
  /** The ACL engine. @default "file" */
  acl?: "file" | "dynamic-security";
  /** A CRL (PEM): client certificates it names are refused. */
  crl?: string;
  /** `max_packet_size`: a client that sends a larger packet is disconnected, as a DMS broker may be set up. */
  maxPacketSize?: number;
}

/** A device the broker lets in: its certificate CN, enrollment id (client id), serial and organisation. */
export interface DeviceGrant {
  commonName: string;
  id: string;
  serial: string;
  organizationId: string;
  /** The organisation's name, the O of the device certificate's subject (a broker that maps subjects to users). */
  organizationName?: string;
}

/** The dynamic-security plugin as Debian installs it. */
const DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
const CONTROL = "$CONTROL/dynamic-security/v1";

/** A running mosquitto. */
export class Mosquitto {
  #child: Child | undefined;
  #listeners: { address: string; port: number }[] = [];
  #ca: TestCA | undefined;
  #dynsec = false;
  readonly #grants: string[] = [];
  readonly #dynamicRoles = new Set<string>();

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
    await Deno.writeTextFile(join(dir, "server.key"), server.keyPem, { mode: 0o600 });
    const port = options.port ?? freePort();
    const broker = new Mosquitto(port, options.device ? freePort(options.device.address) : port, dir);
    broker.#ca = options.ca;
    broker.#dynsec = options.acl === "dynamic-security";
    if (broker.#dynsec) await Deno.writeTextFile(join(dir, "dynsec.json"), JSON.stringify(DYNSEC_START));
    else await broker.#writeAcl();
    const tls = (prefix: string) => [
      `cafile ${join(dir, "ca.crt")}`,
      `certfile ${join(dir, `${prefix}.crt`)}`,
      `keyfile ${join(dir, `${prefix}.key`)}`,
      "require_certificate true",
      "use_identity_as_username true",
      ...options.crl ? [`crlfile ${join(dir, "crl.pem")}`] : [],
    ];
    if (options.crl) await Deno.writeTextFile(join(dir, "crl.pem"), options.crl);
    const device = options.device;
    if (device) {
      await Deno.writeTextFile(join(dir, "device.crt"), device.server.certPem);
      await Deno.writeTextFile(join(dir, "device.key"), device.server.keyPem, { mode: 0o600 });
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
        "set_tcp_nodelay true",
        "per_listener_settings false",
        ...options.maxPacketSize ? [`max_packet_size ${options.maxPacketSize}`] : [],
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_type subscribe",
        ...broker.#dynsec ? ["log_type debug"] : [], // refused SUBSCRIBEs appear only in the debug log
        ...broker.#dynsec
          ? [`plugin ${DYNSEC_PLUGIN}`, `plugin_opt_config_file ${join(dir, "dynsec.json")}`]
          : [`acl_file ${join(dir, "acl")}`],
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

  /**
   * Lets a device in: its own topics (by client id), its serial's command topics (unless `commands` is false)
   * and its organisation's metrics. With dynamic security, granting again adds what was withheld.
   */
  async grantDevice(device: DeviceGrant, options: { commands?: boolean } = {}): Promise<void> {
    const commands = `devices/actions/${device.serial.replace(/[^A-Za-z0-9_-]/g, "")}/#`;
    if (this.#dynsec) return await this.#grantDynamic(device, commands, options.commands ?? true);
    this.#grants.push(
      `user ${device.commonName}`,
      ...(options.commands ?? true ? [`topic read ${commands}`] : []),
      `topic write metrics/${device.organizationId}`,
    );
    await this.#writeAcl();
    try {
      this.#child && Deno.kill(this.#child.pid, "SIGHUP");
    } catch { /* not running */ }
  }

  async #grantDynamic(device: DeviceGrant, commands: string, withCommands: boolean): Promise<void> {
    const role = device.commonName;
    const acls = [
      { acltype: "subscribeLiteral", topic: `devices/sub/${device.id}` },
      { acltype: "publishClientSend", topic: `devices/pub/${device.id}` },
      { acltype: "publishClientSend", topic: `devices/health/${device.id}` },
      { acltype: "publishClientSend", topic: `metrics/${device.organizationId}` },
      ...(withCommands ? [{ acltype: "subscribePattern", topic: commands }] : []),
    ];
    const known = this.#dynamicRoles.has(role);
    this.#dynamicRoles.add(role);
    await this.#control([
      ...known ? [] : [
        { command: "createClient", username: device.commonName },
        { command: "createRole", rolename: role },
        { command: "addClientRole", username: device.commonName, rolename: role },
      ],
      ...acls.map((acl) => ({ command: "addRoleACL", rolename: role, ...acl, allow: true })),
    ]);
  }

  /** Sends dynamic-security commands as the DMS; resolves once they are in force. */
  async #control(commands: Record<string, unknown>[]): Promise<void> {
    const admin = this.#ca!.issue(DMS_USER);
    const client = await mqtt.connectAsync({
      protocol: "mqtts",
      host: "127.0.0.1",
      port: this.port,
      ca: [this.#ca!.certPem],
      cert: admin.certPem,
      key: admin.keyPem,
      checkServerIdentity: () => undefined,
    } as mqtt.IClientOptions);
    try {
      // the plugin runs the commands while handling the PUBLISH: they are in force once it is acknowledged
      await client.publishAsync(CONTROL, JSON.stringify({ commands }), { qos: 1 });
    } finally {
      await client.endAsync();
    }
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

  /** Stops for good and removes its directory (certificates, key, configuration). */
  async dispose(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
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

/** Dynamic security at start: the DMS may do anything (including administer the ACLs); devices nothing yet. */
const DYNSEC_START = {
  defaultACLAccess: {
    publishClientSend: false,
    publishClientReceive: true,
    subscribe: false,
    unsubscribe: true,
  },
  clients: [{ username: DMS_USER, roles: [{ rolename: "dms" }] }],
  groups: [],
  roles: [{
    rolename: "dms",
    acls: ["#", "$CONTROL/dynamic-security/#"].flatMap((topic) => [
      { acltype: "publishClientSend", topic, allow: true },
      { acltype: "subscribePattern", topic, allow: true },
    ]),
  }],
};
