/**
 * HTTP(S) proxies, for networks that reach the outside only through one (factories, corporate sites). What the
 * agent dials — the identity service, the MQTT broker, upload URLs — goes through the proxy that applies to it:
 * plain HTTP requests are sent to the proxy as absolute URIs, everything over TLS (the broker, https) through an
 * HTTP CONNECT tunnel, with TLS and the certificate's names verified inside it, end to end.
 *
 * Sources, for each of `http`, `https` and `no-proxy`, the first that has it wins: the settings `proxy.http`,
 * `proxy.https`, `proxy.no-proxy`; the standard variables (`HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`,
 * `NO_PROXY`/`no_proxy`); snapd's own system settings (`proxy.http`, `proxy.https`, `proxy.no-proxy` of the
 * `system` snap), so a device whose operator set its proxy once needs nothing more. Credentials in a proxy URL
 * (`http://user:password@proxy:3128`) are sent as Basic authentication and never shown.
 */
import net from "node:net";
import type { Socket } from "node:net";

/** The proxies of one kind of target, and the hosts that go direct. */
export interface Proxies {
  http?: URL;
  https?: URL;
  /** `NO_PROXY` entries: `*`, host names (a leading dot or not: the domain and its subdomains), IPs, with an optional `:port`. */
  noProxy: string[];
  /** Where each came from, for the log. */
  origin: { http?: string; https?: string; noProxy?: string };
}

/** One source's values; each is optional. */
export interface ProxySource {
  name: string;
  http?: string;
  https?: string;
  noProxy?: string;
}

/** A proxy that cannot be used or that refused: the message names the proxy and the target. */
export class ProxyError extends Error {
  override name = "ProxyError";
}

/** The proxy URL as messages show it: credentials hidden. */
export function showProxy(proxy: URL): string {
  if (!proxy.username && !proxy.password) return proxy.origin;
  return `${proxy.protocol}//***@${proxy.host}`;
}

/**
 * Resolves the proxies from the sources, in order: the first source that names each of `http`, `https`,
 * `no-proxy` wins.
 * @throws {ProxyError} for a proxy URL that is not http://…
 */
export function resolveProxies(sources: ProxySource[]): Proxies {
  const proxies: Proxies = { noProxy: [], origin: {} };
  for (const source of sources) {
    for (const kind of ["http", "https"] as const) {
      const value = source[kind]?.trim();
      if (!value || proxies[kind]) continue;
      proxies[kind] = parseProxy(value, `${source.name} (${kind})`);
      proxies.origin[kind] = source.name;
    }
    const noProxy = source.noProxy?.trim();
    if (noProxy && proxies.origin.noProxy === undefined) {
      proxies.noProxy = noProxy.split(",").map((entry) => entry.trim().toLowerCase()).filter(Boolean);
      proxies.origin.noProxy = source.name;
    }
  }
  return proxies;
}

function parseProxy(value: string, where: string): URL {
  const url = URL.parse(value.includes("://") ? value : `http://${value}`);
  if (!url || url.protocol !== "http:" || !url.hostname) {
    throw new ProxyError(
      `the proxy of ${where} is not an http:// URL: ${value.replace(/\/\/[^@/]*@/, "//***@")}`,
    );
  }
  return url;
}

/** The variables of a source from the environment (upper case first, as most tools do). */
export function environmentSource(env: Record<string, string | undefined>): ProxySource {
  return {
    name: "the environment",
    http: env.HTTP_PROXY ?? env.http_proxy,
    https: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  };
}

/** True when `host` (and `port`) is one of the `no-proxy` entries. */
export function bypasses(proxies: Proxies, host: string, port: number): boolean {
  const name = host.replace(/^\[|\]$/g, "").toLowerCase();
  return proxies.noProxy.some((entry) => {
    if (entry === "*") return true;
    const [pattern, entryPort] = splitPort(entry);
    if (entryPort !== undefined && entryPort !== port) return false;
    const bare = pattern.replace(/^\*?\./, "");
    return name === bare || name.endsWith(`.${bare}`);
  });
}

function splitPort(entry: string): [string, number | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return [bracketed[1], bracketed[2] ? Number(bracketed[2]) : undefined];
  const match = /^([^:]+):(\d+)$/.exec(entry);
  return match ? [match[1], Number(match[2])] : [entry, undefined];
}

/** The proxy for a target: over TLS (`https`, the broker) the https proxy, else the http one; none when bypassed. */
export function proxyFor(
  proxies: Proxies,
  target: { tls: boolean; host: string; port: number },
): URL | undefined {
  if (bypasses(proxies, target.host, target.port)) return undefined;
  return target.tls ? proxies.https ?? proxies.http : proxies.http;
}

/** The `Proxy-Authorization` header value of a proxy URL with credentials. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${btoa(credentials)}`;
}

/**
 * Opens a TCP tunnel to `host:port` through `proxy` (HTTP CONNECT); resolves with the socket once the proxy said
 * 200, ready for TLS.
 * @throws {ProxyError} naming the proxy and the target when it cannot be reached, asks for credentials (407) or
 *   refuses
 */
export function tunnel(proxy: URL, host: string, port: number, timeoutMs = 30_000): Promise<Socket> {
  const target = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
  const shown = showProxy(proxy);
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: proxy.hostname.replace(/^\[|\]$/g, ""),
      port: Number(proxy.port || 80),
    });
    socket.setNoDelay(true);
    let answer = "";
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ProxyError(message));
    };
    const timer = setTimeout(
      () => fail(`proxy ${shown} did not answer CONNECT to ${target} within ${timeoutMs / 1000} s`),
      timeoutMs,
    );
    socket.once("error", (error) => fail(`cannot reach proxy ${shown} (for ${target}): ${error.message}`));
    socket.once("connect", () => {
      const authorization = proxyAuthorization(proxy);
      socket.write(
        `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n` +
          (authorization ? `Proxy-Authorization: ${authorization}\r\n` : "") + "\r\n",
      );
    });
    const onData = (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      const end = answer.indexOf("\r\n\r\n");
      if (end < 0) {
        if (answer.length > 16_384) fail(`proxy ${shown} sent no end of headers to CONNECT ${target}`);
        return;
      }
      socket.off("data", onData);
      const status = /^HTTP\/1\.[01] (\d{3})\s*(.*)$/m.exec(answer.slice(0, answer.indexOf("\r\n")));
      const code = Number(status?.[1] ?? 0);
      if (code === 200) {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        const rest = answer.slice(end + 4);
        if (rest) socket.unshift(Buffer.from(rest, "latin1"));
        return resolve(socket);
      }
      if (code === 407) {
        return fail(
          `proxy ${shown} asks for credentials to reach ${target} (407 ${status?.[2] ?? ""}`.trim() +
            `): give them in the proxy URL (http://user:password@host:port)`,
        );
      }
      fail(
        `proxy ${shown} refused CONNECT to ${target}: ${code || "no HTTP answer"} ${status?.[2] ?? ""}`
          .trim(),
      );
    };
    socket.on("data", onData);
  });
}

const clients = new Map<string, Deno.HttpClient>();

/**
 * The HTTP client for fetching `url` through its proxy (the identity service), or undefined to go direct; one
 * client per proxy, kept for the process.
 */
export function httpClientFor(proxies: Proxies, url: URL): Deno.HttpClient | undefined {
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const proxy = proxyFor(proxies, { tls: url.protocol === "https:", host: url.hostname, port });
  if (!proxy) return undefined;
  const key = proxy.href;
  let client = clients.get(key);
  if (!client) {
    const basicAuth = proxy.username || proxy.password
      ? { username: decodeURIComponent(proxy.username), password: decodeURIComponent(proxy.password) }
      : undefined;
    client = Deno.createHttpClient({
      proxy: { url: `${proxy.protocol}//${proxy.host}`, ...(basicAuth ? { basicAuth } : {}) },
    });
    clients.set(key, client);
  }
  return client;
}

/** The standard proxy variables, upper and lower case. */
const PROXY_VARIABLES = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"];

/**
 * Reads the standard proxy variables and removes them from this process's environment: the runtime would apply
 * them on its own to every client — `NO_PROXY=localhost` even sends snapd's unix-socket requests to TCP port 80 of
 * localhost — so the agent takes them once and applies its own decision (see {@link resolveProxies}).
 */
export function takeProxyEnvironment(): ProxySource {
  const env = Object.fromEntries(PROXY_VARIABLES.map((name) => [name, Deno.env.get(name)]));
  for (const name of PROXY_VARIABLES) Deno.env.delete(name);
  return environmentSource(env);
}
