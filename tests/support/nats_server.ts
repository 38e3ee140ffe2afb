/** A real nats-server for tests: a loopback port and user/password authorization (optionally per-user permissions). */
import { join } from "node:path";
import { Child } from "./child.ts";
import { freePort, waitForPort } from "./ports.ts";
import { recordSecret } from "./test_log.ts";

/** A NATS user. */
export interface NatsUser {
  user: string;
  password: string;
  /** nats-server permissions block, e.g. `{ publish: ["v1.>"], subscribe: ["_INBOX.>"] }`. */
  permissions?: { publish?: string[]; subscribe?: string[] };
}

/** Options of {@link NatsServer.start}. */
export interface NatsServerOptions {
  users: NatsUser[];
  port?: number;
  /** The loopback address to listen on. @default 127.0.0.1 */
  host?: string;
  /** Extra configuration appended verbatim. */
  extra?: string;
}

/** A running nats-server. */
export class NatsServer {
  #child: Child | undefined;

  private constructor(
    readonly port: number,
    private readonly configPath: string,
    readonly host = "127.0.0.1",
  ) {}

  /** Starts nats-server; resolves once it accepts connections. */
  static async start(options: NatsServerOptions): Promise<NatsServer> {
    const dir = await Deno.makeTempDir({ prefix: "nats-" });
    const host = options.host ?? "127.0.0.1";
    const port = options.port ?? freePort(host);
    for (const user of options.users) recordSecret(user.password);
    const users = options.users.map((u) => {
      const permissions = u.permissions ? `, permissions: ${JSON.stringify(u.permissions)}` : "";
      return `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${permissions} }`;
    });
    const config = [
      `listen: ${host}:${port}`,
      "authorization {",
      "  users = [",
      users.join(",\n"),
      "  ]",
      "}",
      options.extra ?? "",
      "",
    ].join("\n");
    const configPath = join(dir, "nats.conf");
    await Deno.writeTextFile(configPath, config);
    const server = new NatsServer(port, configPath, host);
    await server.restart();
    return server;
  }

  /** Starts nats-server with a configuration file's text, its `listen` line replaced by a free loopback port. */
  static async fromConfig(text: string, port?: number): Promise<NatsServer> {
    const dir = await Deno.makeTempDir({ prefix: "nats-" });
    const chosen = port ?? freePort();
    const configPath = join(dir, "nats.conf");
    await Deno.writeTextFile(configPath, text.replace(/^listen:.*$/m, `listen: 127.0.0.1:${chosen}`));
    const server = new NatsServer(chosen, configPath);
    await server.restart();
    return server;
  }

  /** `nats://<host>:<port>`. */
  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  /** Output of the current process. */
  get log(): Child | undefined {
    return this.#child;
  }

  /** Starts (again) on the same port. */
  async restart(): Promise<void> {
    if (this.#child) await this.stop();
    this.#child = Child.spawn("nats-server", ["-c", this.configPath]);
    await waitForPort(this.port, this.host);
  }

  async stop(): Promise<void> {
    await this.#child?.stop();
    this.#child = undefined;
  }
}
