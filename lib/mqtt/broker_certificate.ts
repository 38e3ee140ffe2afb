/**
 * Why the broker's certificate was refused, told precisely enough to act on. The TLS stack under Deno reports most
 * refusals as "unable to verify the first certificate", whatever the cause; so after such a failure the agent
 * looks at the certificate itself — one more handshake that verifies nothing and sends nothing — and says whether
 * it expired, is not valid yet (often this device's clock), is self-signed, or comes from a CA the device does
 * not trust. Refusals of the device's own certificate (TLS alerts from the broker) are explained here too.
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { BrokerAddress } from "./broker_address.ts";
import { brokerTlsIdentity } from "./broker_address.ts";
import type { BrokerTrust } from "./tls.ts";
import { tlsAlert } from "../errors.ts";

const REMEDIES =
  "set mqtt.ca to the PEM bundle of the CA that signed it, or set mqtt.verify=false to connect " +
  "without verifying it (insecure)";

/** Fetches the certificate the broker presents (no verification, nothing sent after the handshake). */
export function presentedCertificate(
  address: BrokerAddress,
  timeoutMs = 5000,
): Promise<X509Certificate | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: address.host,
      port: address.port,
      servername: brokerTlsIdentity(address).servername,
      rejectUnauthorized: false,
    });
    const done = (certificate?: X509Certificate) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(certificate);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    socket.once("secureConnect", () => {
      const raw = (socket.getPeerCertificate() as { raw?: Uint8Array } | undefined)?.raw;
      try {
        done(raw ? new X509Certificate(raw) : undefined);
      } catch {
        done();
      }
    });
    socket.once("error", () => done());
  });
}

/**
 * One line that says why `certificate` is refused and what to do, or undefined when nothing is wrong with it
 * that the device can see (the caller then reports the TLS error as it is).
 */
export function diagnoseCertificate(
  certificate: X509Certificate,
  broker: string,
  trust: BrokerTrust,
  now: number,
): string | undefined {
  // a day is precise enough to point at a wrong clock, and keeps the line the same from one retry to the next
  const clock = new Date(now).toISOString().slice(0, 10);
  const validFrom = Date.parse(certificate.validFrom);
  const validTo = Date.parse(certificate.validTo);
  const subject = commonName(certificate.subject);
  if (now > validTo) {
    return `the certificate of broker ${broker} (${subject}) expired on ${
      new Date(validTo).toISOString()
    }; ` +
      `this device's clock says ${clock}. The broker's operator must renew it (or, if the date is wrong, fix ` +
      `this device's clock: NTP)`;
  }
  if (now < validFrom) {
    return `the certificate of broker ${broker} (${subject}) is not valid before ${
      new Date(validFrom).toISOString()
    } and this device's clock says ${clock}: set the clock (NTP; a device without a real-time clock starts ` +
      `in 1970)`;
  }
  const trusted = trust.ca.some((pem) => {
    try {
      const ca = new X509Certificate(pem);
      return certificate.checkIssued(ca) && certificate.verify(ca.publicKey);
    } catch {
      return false;
    }
  });
  if (trusted) return undefined;
  if (certificate.subject === certificate.issuer && certificate.verify(certificate.publicKey)) {
    return `broker ${broker} presents a self-signed certificate (${subject}), which this device does not ` +
      `trust (trusted: ${trust.sources.join(", ")}): ${
        REMEDIES.replace("of the CA that signed it", "of it")
      }`;
  }
  return `the certificate of broker ${broker} (${subject}) is signed by "${
    commonName(certificate.issuer)
  }", which this device does not trust (trusted: ${trust.sources.join(", ")}): ${REMEDIES}`;
}

/** One line for a TLS alert the broker sent about the device's own certificate, or undefined. */
export function explainClientCertificateAlert(
  error: unknown,
  clientCertificate: string,
  now: number,
): string | undefined {
  const alert = tlsAlert(error);
  if (!alert) return undefined;
  let validTo: number | undefined;
  try {
    validTo = Date.parse(new X509Certificate(clientCertificate).validTo);
  } catch { /* unreadable: said below */ }
  const reenroll = "the device must be enrolled again (run unregister; the operator resets its registration)";
  switch (alert) {
    case "CertificateExpired":
      return validTo !== undefined && now <= validTo
        ? `the broker says this device's certificate has expired, but by this device's clock ` +
          `(${new Date(now).toISOString().slice(0, 10)}) it is valid until ${
            new Date(validTo).toISOString()
          }: ` +
          `check the clocks of the device and the broker`
        : `the broker refused this device's certificate: it expired${
          validTo ? ` on ${new Date(validTo).toISOString()}` : ""
        }; ${reenroll}`;
    case "CertificateRevoked":
      return `the broker refused this device's certificate: it was revoked; ${reenroll}`;
    case "UnknownCA":
    case "BadCertificate":
    case "CertificateUnknown":
    case "CertificateRequired":
    case "AccessDenied":
      return `the broker refused this device's certificate (TLS alert ${alert}): the enrollment may have been ` +
        `revoked, or the broker does not trust the identity service's CA`;
    default:
      return undefined;
  }
}

function commonName(distinguishedName: string): string {
  return /CN=([^\n,]+)/.exec(distinguishedName)?.[1] ?? distinguishedName.replaceAll("\n", ", ");
}
