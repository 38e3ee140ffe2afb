/**
 * A broker cluster for tests, made of an existing distributed engine rather than a home-made one: three Debian
 * nats-server processes on loopback, routed to each other, JetStream on, each with its MQTT listener over TLS
 * with client certificates mapped to users (`verify_and_map`: a certificate's subject is its user name) and the
 * MQTT sessions and messages in streams replicated to all three nodes. The DMS connects to the first node, devices
 * to the second; any node can be killed and started again.
 *
 * Each cluster starts from empty store folders (stores left by an earlier run change what is delivered), and is
 * ready once every node takes an MQTT client and its QoS 1 subscription (the JetStream leaders are elected).
 */
import { join } from "node:path";
import mqtt from "mqtt";
import { Child } from "./child.ts";
import { type DeviceGrant, DMS_USER } from "./mosquitto.ts";
import type { TestCA } from "./pki.ts";
import { freePort, waitForPort } from "./ports.ts";
import { within } from "./wait.ts";

/** One node's ports. */
interface Node {
  name: string;
  client: number;
  route: number;
  mqtt: number;
  child?: Child;
}

/** A running three-node cluster. */
export class NatsCluster {
  readonly #nodes: Node[];
  readonly #users = new Set<string>([`CN=${DMS_USER}`]);

  private constructor(private readonly dir: string, private readonly ca: TestCA, nodes: Node[]) {
    this.#nodes = nodes;
  }

  /**
   * Starts the cluster with the DMS's user and `users` (certificate subjects such as `CN=device-1,O=Test Org`);
   * resolves once every node serves MQTT with JetStream.
   */
  static async start(ca: TestCA, users: string[] = [], size = 3): Promise<NatsCluster> {
    const dir = await Deno.makeTempDir({ prefix: "nats-cluster-" });
    const server = ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
    await Deno.writeTextFile(join(dir, "ca.pem"), ca.certPem);
    await Deno.writeTextFile(join(dir, "server.pem"), server.certPem);
    await Deno.writeTextFile(join(dir, "server.key"), server.keyPem, { mode: 0o600 });
    const nodes = Array.from({ length: size }, (_, i) => ({
      name: `n${i + 1}`,
      client: freePort(),
      route: freePort(),
      mqtt: freePort(),
    }));
    const cluster = new NatsCluster(dir, ca, nodes);
    for (const user of users) cluster.#users.add(user);
    await cluster.#writeConfigs();
    for (const node of nodes) cluster.#spawn(node);
    await Promise.all(nodes.map((node) => cluster.#ready(node)));
    return cluster;
  }

  /** The DMS's node (the first). */
  get port(): number {
    return this.#nodes[0].mqtt;
  }

  /** The devices' node (the second): what the identity service hands out. */
  get devicePort(): number {
    return this.#nodes[1].mqtt;
  }

  /** Every node's MQTT port, in order. */
  get mqttPorts(): number[] {
    return this.#nodes.map((node) => node.mqtt);
  }

  /**
   * Lets a device in: a user named by its certificate's subject. A subject the cluster started with needs
   * nothing; a new one makes the running nodes reload their configuration — which nats-server 2.9.10 follows by
   * no longer delivering QoS 1 messages to the MQTT subscriptions open at the time (observed on Debian's build):
   * tests that need QoS 1 give the cluster its users at start.
   */
  async grantDevice(device: DeviceGrant): Promise<void> {
    const subject = device.organizationName
      ? `CN=${device.commonName},O=${device.organizationName}`
      : `CN=${device.commonName}`;
    if (this.#users.has(subject)) return;
    this.#users.add(subject);
    await this.#writeConfigs();
    for (const node of this.#nodes) {
      if (node.child) Deno.kill(node.child.pid, "SIGHUP");
    }
  }

  /** Kills a node without a goodbye (SIGKILL), as a crash or a power cut; `index` counts from 0. */
  async kill(index: number): Promise<void> {
    const node = this.#nodes[index];
    await node.child?.stop("SIGKILL");
    node.child = undefined;
  }

  /** Starts a killed node again, with its store; resolves once it serves MQTT. */
  async revive(index: number): Promise<void> {
    const node = this.#nodes[index];
    if (!node.child) this.#spawn(node);
    await this.#ready(node);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map(async (node) => {
      await node.child?.stop();
      node.child = undefined;
    }));
  }

  /** Stops every node and removes the stores, keys and configuration. */
  async dispose(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  #spawn(node: Node): void {
    node.child = Child.spawn("nats-server", ["-c", join(this.dir, `${node.name}.conf`)]);
  }

  async #writeConfigs(): Promise<void> {
    const routes = this.#nodes.map((node) => `nats-route://127.0.0.1:${node.route}`).join(", ");
    const users = [...this.#users].map((user) => `    { user: ${JSON.stringify(user)} }`).join("\n");
    for (const node of this.#nodes) {
      const config = [
        `server_name: ${node.name}`,
        `listen: 127.0.0.1:${node.client}`,
        `jetstream { store_dir: ${JSON.stringify(join(this.dir, node.name))} }`,
        `cluster { name: c1, listen: 127.0.0.1:${node.route}, routes: [${routes}] }`,
        "authorization {",
        "  users = [",
        users,
        "  ]",
        "}",
        "mqtt {",
        `  listen: 127.0.0.1:${node.mqtt}`,
        "  stream_replicas: 3",
        "  consumer_replicas: 3",
        "  tls {",
        `    cert_file: ${JSON.stringify(join(this.dir, "server.pem"))}`,
        `    key_file: ${JSON.stringify(join(this.dir, "server.key"))}`,
        `    ca_file: ${JSON.stringify(join(this.dir, "ca.pem"))}`,
        "    verify_and_map: true",
        "  }",
        "}",
        "",
      ].join("\n");
      await Deno.writeTextFile(join(this.dir, `${node.name}.conf`), config);
    }
  }

  /** Waits until the node takes an MQTT client and a QoS 1 subscription (JetStream ready), within 60 s. */
  async #ready(node: Node): Promise<void> {
    await waitForPort(node.mqtt, "127.0.0.1", 30_000);
    const identity = this.ca.issue(DMS_USER);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const client = mqtt.connect({
        protocol: "mqtts",
        host: "localhost",
        port: node.mqtt,
        clientId: `ready-${crypto.randomUUID().slice(0, 8)}`,
        ca: [this.ca.certPem],
        cert: identity.certPem,
        key: identity.keyPem,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      try {
        // a connection closed before CONNACK settles no promise of mqtt.js: each wait has its own limit
        await within(
          new Promise((resolve, reject) => {
            client.once("connect", resolve);
            client.once("error", reject);
            client.once("close", () => reject(new Error("closed before CONNACK")));
          }),
          `CONNACK from ${node.name}`,
          6000,
        );
        await within(client.subscribeAsync("ready/probe", { qos: 1 }), `SUBACK from ${node.name}`, 5000);
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`nats-server ${node.name} serves no MQTT within 60 s: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      } finally {
        client.end(true);
      }
    }
  }
}
