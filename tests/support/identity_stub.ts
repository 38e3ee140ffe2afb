/**
 * An IoT Identity service stub: `POST /v1/device/enroll` with the real service's behaviour (appendix §3.7) — the
 * body must hold exactly a model and a serial assertion of the same brand and model, the device must be
 * pre-registered and waiting — and its errors (`400 {"code":"EnrollDevice","message":…}`). On success it issues a
 * real X.509 client certificate from the test CA (CN a fresh KSUID-like id, not the device id) and returns the
 * enrollment in the service's exact JSON.
 */
import { parseAssertions } from "../../lib/snapd/assertions.ts";
import type { TestCA } from "./pki.ts";

/** A pre-registered device. */
export interface Registration {
  brand: string;
  model: string;
  serial: string;
  /** 1 waiting, 2 enrolled, 3 disabled. @default 1 */
  status?: number;
  /** Base64 device data returned with the enrollment. @default "" */
  deviceData?: string;
}

/** A scripted failure of the next request, before any enrollment logic. */
export type StubFault = "html-502" | "unavailable-503" | "empty-enrollment" | "close-connection";

/** Options of {@link IdentityStub.start}. */
export interface IdentityStubOptions {
  ca: TestCA;
  /** Broker host and port put into credentials. */
  mqttHost: string;
  mqttPort: number;
  /** Hand out these ports in turn instead (a DMS spreading its devices over a cluster's nodes). */
  mqttPorts?: number[];
  organization?: { id: string; name: string };
  /** The common name of the next device certificate. @default a fresh KSUID */
  commonName?: () => string;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A 27-character KSUID-like id. */
export function ksuid(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(27));
  return Array.from(bytes, (b) => BASE62[b % 62]).join("");
}

function base64(text: string): string {
  return btoa(text);
}

/** The stub server. */
export class IdentityStub {
  readonly registrations = new Map<string, Registration>();
  /** Bodies of every enroll request, as received. */
  readonly requests: { contentType: string | null; body: string }[] = [];
  /** Ids issued by successful enrollments. */
  readonly enrolledIds: string[] = [];
  /** Certificate common names issued (the broker's usernames). */
  readonly issuedNames: string[] = [];
  /** Called after each successful enrollment (e.g. to grant the device its broker topics). */
  onEnrolled?: (
    enrollment: {
      id: string;
      commonName: string;
      serial: string;
      organizationId: string;
      organizationName: string;
    },
  ) => void;
  readonly #faults: StubFault[] = [];
  readonly #organization: { id: string; name: string; cert: string; key: string };
  #server: Deno.HttpServer | undefined;
  port = 0;

  private constructor(private readonly options: IdentityStubOptions) {
    const organization = options.organization ?? { id: "org-test", name: "Test Org" };
    const issued = options.ca.issue(organization.name, { organization: organization.name, isCA: true });
    this.#organization = { ...organization, cert: issued.certPem, key: issued.keyPem };
  }

  #handedOut = 0;

  #nextPort(): number {
    const ports = this.options.mqttPorts;
    return ports?.length ? ports[this.#handedOut++ % ports.length] : this.options.mqttPort;
  }

  /** Starts the stub on a free loopback port. */
  static start(options: IdentityStubOptions, port = 0): IdentityStub {
    const stub = new IdentityStub(options);
    stub.listen(port);
    return stub;
  }

  /** Base URL (`http://127.0.0.1:<port>`). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The organisation's certificate (PEM), sent as `rootcert`. */
  get organizationCert(): string {
    return this.#organization.cert;
  }

  /** Listens (again) on `port` (0: a free one). */
  listen(port = this.port): void {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.port = (this.#server.addr as Deno.NetAddr).port;
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  /** Pre-registers a device (what the management service does before a device enrolls). */
  register(registration: Registration): void {
    const key = `${registration.brand}/${registration.model}/${registration.serial}`;
    this.registrations.set(key, { status: 1, deviceData: "", ...registration });
  }

  /** Makes the next request fail this way. */
  injectFault(fault: StubFault): void {
    this.#faults.push(fault);
  }

  /** Drops the faults not yet used. */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/v1/device/enroll") {
      return new Response("404 page not found\n", { status: 404, headers: { "Content-Type": "text/plain" } });
    }
    const body = await request.text();
    this.requests.push({ contentType: request.headers.get("Content-Type"), body });
    const fault = this.#faults.shift();
    if (fault === "html-502") {
      return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", {
        status: 502,
        headers: { "Content-Type": "text/html" },
      });
    }
    if (fault === "unavailable-503") {
      return new Response("503 Service Unavailable\n", {
        status: 503,
        headers: { "Content-Type": "text/plain", "Retry-After": "1" },
      });
    }
    if (fault === "close-connection") throw new Error("stub drops the connection");
    if (fault === "empty-enrollment") return answer(200, { code: "", message: "", enrollment: {} });
    return this.#enroll(body);
  }

  #enroll(body: string): Response {
    if (body.trim() === "") return failure("no data supplied");
    let assertions;
    try {
      assertions = parseAssertions(body);
    } catch (error) {
      return failure(`cannot decode assertion: ${(error as Error).message}`);
    }
    if (assertions.length > 2) return failure("unexpected assertion in the request stream");
    const model = assertions.find((a) => a.type === "model");
    const serial = assertions.find((a) => a.type === "serial");
    if (assertions.length < 2 || !model || !serial) {
      return failure("a model and a serial assertion are required");
    }
    if (
      model.headers["brand-id"] !== serial.headers["brand-id"] || model.headers.model !== serial.headers.model
    ) {
      return failure("model and serial assertions do not match");
    }
    const key = `${serial.headers["brand-id"]}/${serial.headers.model}/${serial.headers.serial}`;
    const registration = this.registrations.get(key);
    if (!registration) return failure("error retrieving device: sql: no rows in result set");
    if (registration.status === 2) return failure(`the device \`${key}\` is already enrolled`);
    if (registration.status === 3) return failure(`the device registration for \`${key}\` is disabled`);
    registration.status = 2;
    const id = ksuid();
    const commonName = this.options.commonName?.() ?? ksuid();
    const client = this.options.ca.issue(commonName, { organization: this.#organization.name });
    this.enrolledIds.push(id);
    this.issuedNames.push(commonName);
    this.onEnrolled?.({
      id,
      commonName,
      serial: registration.serial,
      organizationId: this.#organization.id,
      organizationName: this.#organization.name,
    });
    return answer(200, {
      code: "",
      message: "",
      enrollment: {
        id,
        device: {
          brand: registration.brand,
          model: registration.model,
          serial: registration.serial,
          ...(model.headers.store ? { store: model.headers.store } : {}),
          deviceKey: serial.headers["device-key"],
        },
        credentials: {
          privateKey: base64(client.keyPem),
          certificate: base64(client.certPem),
          mqttUrl: this.options.mqttHost,
          mqttPort: String(this.#nextPort()),
        },
        organization: {
          id: this.#organization.id,
          name: this.#organization.name,
          rootcert: base64(this.#organization.cert),
          "-": base64(this.#organization.key),
        },
        status: 2,
        deviceData: registration.deviceData ?? "",
      },
    });
  }
}

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "Content-Type": "application/json; charset=UTF-8" },
  });
}

function failure(message: string): Response {
  return answer(400, { code: "EnrollDevice", message });
}
