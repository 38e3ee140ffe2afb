/**
 * The mqtt.js options of one connection attempt: MQTT 3.1.1 with a persistent session, the library's own
 * reconnect and resubscribe off (the session owns both), the device's certificate, and TLS that names and
 * verifies the broker as configured (RFC 6066) whatever address is dialled.
 */
import type { Socket } from "node:net";
import type { ConnectionOptions } from "node:tls";
import type mqtt from "mqtt";
import { brokerTlsIdentity } from "./broker_address.ts";
import type { BrokerCandidate } from "./broker_rotation.ts";
import type { BrokerTrust } from "./tls.ts";

/** The client options: mqtt.js hands the TLS ones through to `tls.connect`. */
export type ClientOptions = mqtt.IClientOptions & Pick<ConnectionOptions, "checkServerIdentity" | "socket">;

/** What the options are made of: the device's identity and the session's settings. */
export interface DeviceConnection {
  clientId: string;
  /** PEM client certificate and key. */
  certificate: string;
  privateKey: string;
  trust: BrokerTrust;
  /** Keep-alive, in ms. @default 30000 */
  keepaliveMs?: number;
}

/** The options to dial `candidate`; `socket`: a proxy's tunnel to run TLS in. */
export function deviceClientOptions(
  candidate: BrokerCandidate,
  o: DeviceConnection,
  socket: Socket | undefined,
): ClientOptions {
  const address = candidate.broker;
  const identity = brokerTlsIdentity(address);
  return {
    protocol: "mqtts",
    host: candidate.dial,
    port: address.port,
    servername: identity.servername,
    checkServerIdentity: identity.checkServerIdentity,
    clientId: o.clientId,
    clean: false,
    protocolVersion: 4,
    keepalive: Math.max(1, Math.round((o.keepaliveMs ?? 30_000) / 1000)),
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    resubscribe: false,
    queueQoSZero: false,
    // mqtt-packet's number cache is 65,536 two-byte Buffers (about 8 MB of heap) to save an allocation per
    // packet id: not worth it at a device's message rate
    writeCache: false,
    cert: o.certificate,
    key: o.privateKey,
    ca: o.trust.ca,
    rejectUnauthorized: o.trust.verify,
    ...(socket ? { socket } : {}),
  };
}
