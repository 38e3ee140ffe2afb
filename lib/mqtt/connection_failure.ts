/**
 * Why a connection to a broker failed, in one line an operator can act on: a refusal of the device's own
 * certificate, or — when TLS refused the broker's — what is wrong with the certificate it presents (looked at in a
 * second handshake that verifies nothing), else the verification error explained.
 */
import type { BrokerAddress } from "./broker_address.ts";
import { BrokerNameMismatchError } from "./broker_address.ts";
import {
  diagnoseCertificate,
  explainClientCertificateAlert,
  presentedCertificate,
} from "./broker_certificate.ts";
import { type BrokerTrust, explainVerificationFailure } from "./tls.ts";
import { isPeerCertificateUnverified } from "../errors.ts";

/** What the explanation needs to know. */
export interface FailureContext {
  broker: BrokerAddress;
  /** The device's PEM client certificate. */
  certificate: string;
  trust: BrokerTrust;
  /** Now, in ms since the epoch. */
  now: number;
}

/** One line that says why a connection failed. */
export async function explainConnectionFailure(error: Error, context: FailureContext): Promise<string> {
  const { broker, certificate, trust, now } = context;
  const alert = explainClientCertificateAlert(error, certificate, now);
  if (alert) return alert;
  if (!isPeerCertificateUnverified(error)) return error.message;
  if (!(error instanceof BrokerNameMismatchError)) {
    try {
      const presented = await presentedCertificate(broker);
      const diagnosis = presented && diagnoseCertificate(presented, broker.label, trust, now);
      if (diagnosis) return diagnosis;
    } catch { /* the generic explanation below */ }
  }
  return explainVerificationFailure(error, broker.label, trust);
}
