/**
 * The broker's address as the identity service hands it out (`mqttUrl`, `mqttPort`): a host name, an IPv4
 * literal, or an IPv6 literal with or without brackets. TLS follows RFC 6066: the server name indication carries
 * host names only, never an address, and the broker certificate must name what the agent dialled — a host name
 * in a DNS SAN, an address in an IP SAN. A mismatch is reported with both names, never as a crash.
 */
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";

/** A broker address, ready to dial. */
export interface BrokerAddress {
  /** What to dial and verify: a host name, or an IP literal without brackets. */
  host: string;
  kind: "name" | "ipv4" | "ipv6";
  port: number;
  /** `host:port` for messages, an IPv6 literal in brackets (`[::1]:8883`). */
  label: string;
}

const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Parses the enrollment's broker host and port.
 * @throws {TypeError} when the host is neither a host name nor an IP literal, or the port is not a TCP port.
 */
export function brokerAddress(mqttUrl: string, mqttPort: string | number): BrokerAddress {
  const raw = mqttUrl.trim();
  const host = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  const family = isIP(host);
  if (family === 0 && (host !== raw || !HOST_NAME.test(host))) {
    throw new TypeError(`broker address "${mqttUrl}" is neither a host name nor an IP address`);
  }
  const port = Number(mqttPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`broker port "${mqttPort}" is not a TCP port`);
  }
  const kind = family === 4 ? "ipv4" : family === 6 ? "ipv6" : "name";
  return { host, kind, port, label: kind === "ipv6" ? `[${host}]:${port}` : `${host}:${port}` };
}

/** The broker certificate does not name the host or address the agent connected to. */
export class BrokerNameMismatchError extends Error {
  override name = "BrokerNameMismatchError";
  /** Node's code for this condition, so every TLS reporting path recognises it. */
  readonly code = "ERR_TLS_CERT_ALTNAME_INVALID";

  /**
   * @param address what the agent dialled
   * @param presented the names the certificate carries
   */
  constructor(readonly address: BrokerAddress, readonly presented: string, options?: ErrorOptions) {
    super(`the certificate names ${presented}, not ${describeExpected(address)}`, options);
  }
}

/** The TLS options that make the handshake follow RFC 6066 for `address`. */
export interface BrokerTlsIdentity {
  /** SNI: the host name, or undefined for an IP literal (an address is never sent as a server name). */
  servername: string | undefined;
  /** Verifies the certificate's names against the address; returns the error that refuses it. */
  checkServerIdentity(host: string, certificate: PeerCertificate): Error | undefined;
}

/** TLS server identity options for the broker at `address`. */
export function brokerTlsIdentity(address: BrokerAddress): BrokerTlsIdentity {
  return {
    servername: address.kind === "name" ? address.host : undefined,
    checkServerIdentity(_host, certificate) {
      const error = checkServerIdentity(address.host, certificate);
      if (!error) return undefined;
      return new BrokerNameMismatchError(address, describePresented(certificate), { cause: error });
    },
  };
}

function describeExpected(address: BrokerAddress): string {
  return address.kind === "name" ? `host name ${address.host}` : `IP address ${address.host}`;
}

/** The names a certificate presents: its SANs (`DNS:a, IP:b`), or its CN when it has none. */
export function describePresented(certificate: PeerCertificate): string {
  const sans = (certificate.subjectaltname ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
    .map((s) => s.replace(/^IP Address:/, "IP:"));
  if (sans.length > 0) return sans.join(", ");
  const cn = certificate.subject?.CN;
  return cn ? `only the common name ${cn} (no subjectAltName)` : "no name at all";
}

/**
 * Parses a `host:port` broker entry (`mqtt.brokers`): a host name or IPv4 address and a port, or an IPv6 address
 * in brackets and a port (`[2001:db8::1]:8883`).
 * @throws {TypeError} naming what is wrong
 */
export function parseBrokerEntry(entry: string): BrokerAddress {
  const match = /^(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})$/.exec(entry.trim());
  if (!match) throw new TypeError(`broker "${entry}" is not host:port (an IPv6 address in brackets)`);
  return brokerAddress(match[1], match[2]);
}
