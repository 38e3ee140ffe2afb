/**
 * An embedded MQTT broker (npm aedes) with a TLS listener that requires client certificates: the demo's broker
 * when mosquitto is not installed, so `deno task demo` needs nothing but Deno. Tests use mosquitto.
 */
import { Aedes } from "aedes";
import tls from "node:tls";
import type { Issued, TestCA } from "./pki.ts";
import { freePort } from "./ports.ts";

/** A running embedded broker. */
export class AedesBroker {
  readonly name = "embedded broker (aedes)";

  private constructor(
    readonly port: number,
    private readonly broker: Aedes,
    private readonly server: tls.Server,
  ) {}

  /** Starts the broker on a free loopback port. */
  static async start(options: { ca: TestCA; server?: Issued }): Promise<AedesBroker> {
    const identity = options.server ??
      options.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
    const broker = await Aedes.createBroker();
    const server = tls.createServer({
      key: identity.keyPem,
      cert: identity.certPem,
      ca: [options.ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
    }, broker.handle);
    const port = freePort();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
    return new AedesBroker(port, broker, server);
  }

  /** Topic permissions are not enforced by the embedded broker. */
  grantDevice(): Promise<void> {
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
