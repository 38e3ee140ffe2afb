/**
 * The proxies this agent dials through, decided once at start from its three sources (see proxy.ts for the
 * order), and the two ways its clients use them: a CONNECT tunnel for the broker, an HTTP client for URLs.
 */
import type { Socket } from "node:net";
import type { AgentConfig } from "../settings.ts";
import type { SnapdClient } from "../snapd/client.ts";
import { type ResolveAddresses, resolveAll } from "../mqtt/broker_rotation.ts";
import { type Proxies, proxyFor, type ProxySource, resolveProxies, showProxy, tunnel } from "./proxy.ts";

/** snapd's `system` settings under `proxy` (`http`, `https`, `no-proxy`); empty when snapd cannot tell. */
export type SystemProxySettings = () => Promise<Record<string, unknown>>;

/** snapd's system proxy settings, read through its REST API. */
export function snapdProxySettings(snapd: Pick<SnapdClient, "snapConfig">): SystemProxySettings {
  return async () => {
    const { proxy } = await snapd.snapConfig("system", ["proxy"]);
    return proxy !== null && typeof proxy === "object" ? proxy as Record<string, unknown> : {};
  };
}

/**
 * The proxies from the settings, then the environment (taken at start, see takeProxyEnvironment), then snapd's
 * system settings.
 * @throws {ProxyError} for a proxy that is not an http:// URL
 */
export async function agentProxies(
  config: AgentConfig,
  environment: ProxySource,
  systemSettings: SystemProxySettings,
): Promise<Proxies> {
  const system = await systemSettings().catch(() => ({} as Record<string, unknown>));
  const text = (value: unknown) => typeof value === "string" ? value : undefined;
  return resolveProxies([
    {
      name: "settings",
      http: config["proxy.http"],
      https: config["proxy.https"],
      noProxy: config["proxy.no-proxy"],
    },
    environment,
    {
      name: "snapd's system settings",
      http: text(system.http),
      https: text(system.https),
      noProxy: text(system["no-proxy"]),
    },
  ]);
}

/** What the log says about the proxies: each one's URL without credentials and where it came from. */
export function describeProxies(proxies: Proxies): Record<string, string | undefined> {
  return {
    https: proxies.https && `${showProxy(proxies.https)} (${proxies.origin.https})`,
    http: proxies.http && `${showProxy(proxies.http)} (${proxies.origin.http})`,
    no_proxy: proxies.noProxy.join(",") || undefined,
  };
}

/** Opens the broker's connection through its proxy: a CONNECT tunnel, or undefined to dial directly. */
export function brokerTunnel(
  proxies: Proxies,
  timeoutMs?: number,
): (host: string, port: number) => Promise<Socket | undefined> {
  return (host, port) => {
    const proxy = proxyFor(proxies, { tls: true, host, port });
    return proxy ? tunnel(proxy, host, port, timeoutMs) : Promise.resolve(undefined);
  };
}

/** Every address of a broker's name, or the name alone when a proxy carries the connection (the proxy resolves it). */
export function brokerResolver(proxies: Proxies): ResolveAddresses {
  return (broker) =>
    proxyFor(proxies, { tls: true, host: broker.host, port: broker.port })
      ? Promise.resolve([broker.host])
      : resolveAll(broker);
}

/** The device's own NATS server, never proxied whatever the settings say: `localhost`, `127.0.0.1`, `::1`. */
const LOCAL_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/**
 * Opens the local API's connection to a remote NATS server through the https proxy (a CONNECT tunnel, TLS inside
 * it when the server asks for it); the device's own server, and hosts in `no-proxy`, are dialled directly.
 */
export function natsTunnel(
  proxies: Proxies,
  timeoutMs?: number,
): (host: string, port: number) => Promise<Socket | undefined> {
  const throughProxy = brokerTunnel(proxies, timeoutMs);
  return (host, port) =>
    LOCAL_NAMES.has(host.toLowerCase()) ? Promise.resolve(undefined) : throughProxy(host, port);
}
