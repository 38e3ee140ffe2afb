/**
 * HTTP PUT of a stream of known length, as presigned upload URLs (S3 and the like) require: the body is streamed
 * with a `Content-Length` header, never chunked and never held whole in memory. Any 2xx answer is success.
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import tls from "node:tls";
import { isIP } from "node:net";
import { type Proxies, proxyAuthorization, proxyFor, tunnel } from "./net/proxy.ts";

/** Answers larger than this are cut in error messages. */
const ERROR_BODY_LIMIT = 200;

/** Options of {@link uploadStream}. */
export interface UploadOptions {
  /**
   * The whole upload's time limit, from its first byte to the server's answer, in ms (`uploads.timeout`): a
   * server that takes the body and never answers fails the upload then, not never. @default 600000
   */
  timeoutMs?: number;
  /** The proxies; the one that applies to the URL carries the upload (https through a CONNECT tunnel). */
  proxies?: Proxies;
  /** PEM CAs trusted instead of the system's for an https upload. @default the system store */
  ca?: string;
}

/**
 * Whom TLS inside a tunnel verifies: a host name is sent as SNI; an IP address may not be (RFC 6066, and node
 * refuses it: "servername must not be an IP address"), so it goes as `host`, which the certificate is checked
 * against (its IP SAN), as lib/mqtt/broker_address.ts does for the broker.
 */
function tlsTarget(url: URL): { servername?: string; host: string } {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return isIP(host) ? { host } : { servername: host, host };
}

/** PUTs `body` (`length` bytes) to `url`. @throws {Error} with the status and the start of the answer. */
export async function uploadStream(
  url: URL,
  body: ReadableStream<Uint8Array>,
  length: number,
  options: UploadOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  const proxy = options.proxies && proxyFor(options.proxies, { tls: secure, host: url.hostname, port });
  // https through a proxy: TLS inside its tunnel; http through a proxy: the absolute URL, to the proxy
  const socket: Socket | undefined = proxy && secure ? await tunnel(proxy, url.hostname, port) : undefined;
  const authorization = proxy && !secure ? proxyAuthorization(proxy) : undefined;
  const client = secure ? https : http;
  return await new Promise((resolve, reject) => {
    const request = proxy && !secure
      ? http.request({
        host: proxy.hostname,
        port: Number(proxy.port || 80),
        path: url.href,
        method: "PUT",
        headers: {
          "Content-Length": length,
          Host: url.host,
          ...(authorization ? { "Proxy-Authorization": authorization } : {}),
        },
        timeout: timeoutMs,
      })
      : client.request(url, {
        method: "PUT",
        headers: { "Content-Length": length },
        timeout: timeoutMs,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(socket
          ? { createConnection: () => tls.connect({ socket, ...tlsTarget(url), ca: options.ca }) }
          : {}),
      });
    // the socket's own timeout only counts silence: a server that trickles, or that holds an answered body, would
    // hold the upload for ever
    const deadline = setTimeout(
      () => request.destroy(new Error(`not finished within ${timeoutMs / 1000}s (uploads.timeout)`)),
      timeoutMs,
    );
    request.on("close", () => clearTimeout(deadline));
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    request.on("error", (error) => reject(new Error(`upload to ${url.host} failed: ${error.message}`)));
    request.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (text.length < ERROR_BODY_LIMIT) text += chunk;
      });
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve();
        reject(
          new Error(
            `upload to ${url.host} answered HTTP ${status}: ${text.slice(0, ERROR_BODY_LIMIT).trim()}`,
          ),
        );
      });
    });
    const source = Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]);
    source.on("error", (error) => request.destroy(error));
    source.pipe(request);
  });
}
