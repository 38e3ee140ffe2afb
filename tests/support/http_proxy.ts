/**
 * A real HTTP proxy for tests: Debian's tinyproxy on a loopback port, in the foreground, logging every request
 * (CONNECT included) to a file the test reads. Optionally with Basic authentication, or allowing CONNECT only to
 * port 443 (a proxy that refuses the broker).
 */
import { join } from "node:path";
import { Child } from "./child.ts";
import { freePort, waitForPort } from "./ports.ts";
import { recordSecret } from "./test_log.ts";

/** Options of {@link HttpProxy.start}. */
export interface HttpProxyOptions {
  /** Basic authentication the proxy asks for. */
  credentials?: { user: string; password: string };
  /** Allow CONNECT only to these ports (tinyproxy's `ConnectPort`); every port when absent. */
  connectPorts?: number[];
}

/** A running tinyproxy. */
export class HttpProxy {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: Child,
    private readonly credentials?: { user: string; password: string },
  ) {}

  /** Starts tinyproxy; resolves once it accepts connections. */
  static async start(options: HttpProxyOptions = {}): Promise<HttpProxy> {
    const dir = await Deno.makeTempDir({ prefix: "tinyproxy-" });
    const port = freePort();
    if (options.credentials) recordSecret(options.credentials.password);
    await Deno.writeTextFile(
      join(dir, "tinyproxy.conf"),
      [
        "User root",
        "Group root",
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 60",
        `LogFile "${join(dir, "tinyproxy.log")}"`,
        "LogLevel Info",
        "MaxClients 100",
        ...(options.credentials
          ? [`BasicAuth ${options.credentials.user} ${options.credentials.password}`]
          : []),
        ...(options.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const child = Child.spawn("tinyproxy", ["-d", "-c", join(dir, "tinyproxy.conf")]);
    await waitForPort(port);
    return new HttpProxy(port, dir, child, options.credentials);
  }

  /** The proxy's URL, with its credentials when it asks for some (or `withCredentials` is false). */
  url(withCredentials = true): string {
    const auth = withCredentials && this.credentials
      ? `${this.credentials.user}:${encodeURIComponent(this.credentials.password)}@`
      : "";
    return `http://${auth}127.0.0.1:${this.port}`;
  }

  /** The requests the proxy logged: `CONNECT host:port`, `POST http://…`. */
  async requests(): Promise<string[]> {
    const log = await Deno.readTextFile(join(this.dir, "tinyproxy.log")).catch(() => "");
    return [...log.matchAll(/Request \(file descriptor \d+\): (\S+ \S+) HTTP/g)].map((m) => m[1]);
  }

  async stop(): Promise<void> {
    await this.child.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
