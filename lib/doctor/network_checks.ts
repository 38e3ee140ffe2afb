/** The doctor's checks of the links out: the proxies, the MQTT broker, the local NATS server. */
import net, { type Socket } from "node:net";
import { type CheckResult, fail, ok, warn } from "./check_result.ts";
import type { AgentConfig } from "../settings.ts";
import type { Enrollment } from "../identity/enrollment.ts";
import type { OperatorHints } from "../operator_hints.ts";
import { brokerAddress } from "../mqtt/broker_address.ts";
import { brokerHandshake, HandshakeTimeoutError } from "../mqtt/broker_handshake.ts";
import { brokerTrust, explainVerificationFailure } from "../mqtt/tls.ts";
import { NATS_USER } from "../nats/service.ts";
import { DEFAULT_PASSWORD_RISK, privatePasswordHint, writeRefusal } from "../nats/write_guard.ts";
import { hideUserinfo } from "../log.ts";
import type { ConnectionOptions, NatsConnection } from "nats";
import { type Proxies, proxyFor, showProxy, tunnel } from "../net/proxy.ts";
import { errorMessage, isAuthorizationRefused, isPeerCertificateUnverified } from "../errors.ts";

/**
 * Each proxy the agent would use: it accepts a TCP connection. Whether it lets the agent through (credentials,
 * allowed ports) shows in the broker and identity checks, which go through it.
 */
export async function checkProxies(proxies: Proxies | undefined): Promise<CheckResult[]> {
  const name = "proxy";
  if (!proxies?.http && !proxies?.https) return [ok(name, "none: the agent dials directly")];
  const used = new Map<string, { proxy: URL; kinds: string[] }>();
  for (const kind of ["https", "http"] as const) {
    const proxy = proxies[kind];
    if (!proxy) continue;
    const entry = used.get(proxy.href) ?? { proxy, kinds: [] };
    entry.kinds.push(`${kind} (${proxies.origin[kind]})`);
    used.set(proxy.href, entry);
  }
  const bypass = proxies.noProxy.length ? `; direct to ${proxies.noProxy.join(",")}` : "";
  return await Promise.all([...used.values()].map(async ({ proxy, kinds }) => {
    const what = `${showProxy(proxy)} for ${kinds.join(", ")}`;
    const problem = await reachable(proxy.hostname.replace(/^\[|\]$/g, ""), Number(proxy.port || 80));
    return problem
      ? fail(name, `${what}: ${problem}`, "check the proxy settings (proxy.https, proxy.http) and the proxy")
      : ok(name, `${what} accepts connections${bypass}`);
  }));
}

/** Undefined when host:port accepts a TCP connection within 5 s, else why not. */
function reachable(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (problem?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done("no connection within 5 s"), 5000);
    socket.once("connect", () => done());
    socket.once("error", (error) => done(`cannot connect: ${error.message}`));
  });
}

/** A TLS handshake with the broker, with the client certificate, through the proxy when one applies. */
export async function checkBroker(
  enrollment: Enrollment,
  config: AgentConfig,
  proxies: Proxies | undefined,
): Promise<CheckResult> {
  const name = "broker";
  const { mqttUrl, mqttPort } = enrollment.credentials;
  let address, trust;
  try {
    address = brokerAddress(mqttUrl, mqttPort);
    trust = await brokerTrust({
      verify: config["mqtt.verify"],
      caFile: config["mqtt.ca"],
      organizationRoot: enrollment.organization.rootcert,
    });
  } catch (error) {
    return fail(name, errorMessage(error));
  }
  const proxy = proxies && proxyFor(proxies, { tls: true, host: address.host, port: address.port });
  const broker = proxy ? `${address.label} through proxy ${showProxy(proxy)}` : address.label;
  let tunnelled: Socket | undefined;
  try {
    tunnelled = proxy && await tunnel(proxy, address.host, address.port, 10_000);
  } catch (error) {
    return fail(name, errorMessage(error), "check the proxy settings (proxy.https) and the proxy");
  }
  const error = await brokerHandshake({
    broker: address,
    certificate: enrollment.credentials.certificate,
    privateKey: enrollment.credentials.privateKey,
    trust,
    socket: tunnelled,
  });
  if (!error) {
    return trust.verify ? ok(name, `TLS handshake with ${broker}, certificate verified`) : warn(
      name,
      `TLS handshake with ${broker}, certificate NOT verified (mqtt.verify=false)`,
      "set mqtt.ca instead",
    );
  }
  if (error instanceof HandshakeTimeoutError) {
    return fail(name, `no TLS handshake with ${broker} within 10 s`, "check the network and the broker");
  }
  return isPeerCertificateUnverified(error)
    ? fail(name, explainVerificationFailure(error, broker, trust))
    : fail(name, `cannot reach ${broker}: ${error.message}`, "check the network and the broker");
}

/** Without `nats.ca` the NATS password goes out in clear: whoever listens on the port first receives it. */
export function checkNatsTransport(config: AgentConfig): CheckResult {
  const name = "NATS transport";
  const servers = config["nats.url"].map(hideUserinfo).join(",");
  if (config["nats.ca"]) {
    return ok(name, `TLS: ${servers} must prove itself against nats.ca before the password`);
  }
  return warn(
    name,
    `no nats.ca: the password of user ${NATS_USER} travels in clear to whatever listens on ${servers}`,
    "run the NATS server with TLS and set nats.ca to the PEM bundle of its CA (the agent then verifies the server first)",
  );
}

/** Connects as the agent would and says whether the server accepts user snapd, and whether writes are open. */
export async function checkNats(
  config: AgentConfig,
  hints: OperatorHints,
  connect: (options: ConnectionOptions) => Promise<NatsConnection>,
): Promise<CheckResult> {
  const name = "NATS";
  const servers = config["nats.url"];
  const caFile = config["nats.ca"];
  try {
    const connection = await connect({
      servers,
      user: NATS_USER,
      pass: config["nats.snapd.password"],
      reconnect: false,
      timeout: 3000,
      ...(caFile ? { tls: { ca: await Deno.readTextFile(caFile) } } : {}),
    });
    const server = connection.getServer();
    await connection.close();
    if (writeRefusal(config["nats.snapd.password"], hints)) {
      return warn(
        name,
        `${server} accepts user ${NATS_USER}; the local API refuses every write: ${DEFAULT_PASSWORD_RISK}`,
        privatePasswordHint(hints),
      );
    }
    return ok(name, `${server} accepts user ${NATS_USER}`);
  } catch (error) {
    const message = errorMessage(error);
    if (isAuthorizationRefused(error)) {
      return fail(
        name,
        `${servers.map(hideUserinfo).join(",")} refuses user ${NATS_USER}: ${message}`,
        `nats.snapd.password must match the NATS server's: ${hints.setNatsPassword}`,
      );
    }
    return warn(
      name,
      `${servers.map(hideUserinfo).join(",")} not reachable: ${message}`,
      "is the NATS snap installed and running? (the local API is unavailable)",
    );
  }
}
