/**
 * A TLS handshake with a broker, with the device's certificate and the same verification as its MQTT connection
 * (trust, RFC 6066 names), and nothing sent after it: whether the broker would take this device now. `agent
 * doctor` reports it; the session uses it to tell when the first broker is back.
 */
import type { Socket } from "node:net";
import tls from "node:tls";
import { type BrokerAddress, brokerTlsIdentity } from "./broker_address.ts";
import type { BrokerTrust } from "./tls.ts";

/** Options of {@link brokerHandshake}. */
export interface HandshakeOptions {
  broker: BrokerAddress;
  /** The address to dial. @default the broker's host */
  dial?: string;
  /** PEM client certificate and key. */
  certificate: string;
  privateKey: string;
  trust: BrokerTrust;
  /** A tunnel to the broker (through a proxy) to run TLS in. */
  socket?: Socket;
  /** @default 10000 */
  timeoutMs?: number;
}

/** A handshake that did not complete in time. */
export class HandshakeTimeoutError extends Error {
  override name = "HandshakeTimeoutError";
}

/** Resolves with undefined once the handshake completed and verified, or with the error that ended it. */
export function brokerHandshake(options: HandshakeOptions): Promise<Error | undefined> {
  const { broker, trust } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const identity = brokerTlsIdentity(broker);
  return new Promise((resolve) => {
    const socket = tls.connect({
      ...(options.socket ? { socket: options.socket } : {}),
      host: options.dial ?? broker.host,
      port: broker.port,
      servername: identity.servername,
      checkServerIdentity: identity.checkServerIdentity,
      ca: trust.ca,
      cert: options.certificate,
      key: options.privateKey,
      rejectUnauthorized: trust.verify,
    });
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(
      () =>
        done(new HandshakeTimeoutError(`no TLS handshake with ${broker.label} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    socket.once("secureConnect", () => done());
    socket.once("error", (error) => done(error));
  });
}
