/**
 * Which CAs the agent trusts for the broker certificate: the system store, the organisation root certificate
 * of the enrollment, and the optional `mqtt.ca` bundle. With `mqtt.verify=false` nothing is verified (the Go
 * agent's behaviour, insecure). Also turns TLS failures into one line that says what to do.
 */
import { rootCertificates } from "node:tls";
import { readTextIfExists } from "../files.ts";
import { BrokerNameMismatchError } from "./broker_address.ts";
import { errorMessage } from "../errors.ts";
import { travelsInClearText } from "../identity/params.ts";
import { hideUserinfo } from "../log.ts";

/** The system CA bundle on Debian and Ubuntu (Ubuntu Core included). */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** The trust settings handed to the TLS client. */
export interface BrokerTrust {
  /** PEM certificates trusted as roots. */
  ca: string[];
  /** False when `mqtt.verify=false`. */
  verify: boolean;
  /** What `ca` was built from, for messages. */
  sources: string[];
}

/** Options of {@link brokerTrust}. */
export interface BrokerTrustOptions {
  verify: boolean;
  /** `mqtt.ca`: path of a PEM bundle. */
  caFile?: string;
  /** The enrollment's organisation root certificate (PEM), possibly empty. */
  organizationRoot: string;
  /**
   * The identity service URL the enrollment (and its root certificate) came from. Over plain http outside
   * loopback the root certificate may have been swapped on the way, so it is not trusted: the broker must then
   * be vouched for by `mqtt.ca` (or the system store).
   */
  organizationRootFrom?: string;
  /** @default SYSTEM_CA_BUNDLE */
  systemBundle?: string;
}

/**
 * Builds the trust settings.
 * @throws {Error} when `mqtt.ca` cannot be read or holds no certificate.
 */
export async function brokerTrust(options: BrokerTrustOptions): Promise<BrokerTrust> {
  const ca: string[] = [...rootCertificates];
  const sources = ["system store"];
  const system = await readTextIfExists(options.systemBundle ?? SYSTEM_CA_BUNDLE).catch(() => undefined);
  if (system) ca.push(...splitPem(system));
  if (options.organizationRoot) {
    if (options.organizationRootFrom && travelsInClearText(options.organizationRootFrom)) {
      sources.push(
        `not the organisation root certificate (it came over plain http from ${
          hideUserinfo(options.organizationRootFrom)
        }, where anyone on the path could have swapped it; set mqtt.ca)`,
      );
    } else {
      ca.push(options.organizationRoot);
      sources.push("organisation root certificate");
    }
  }
  if (options.caFile) {
    let bundle: string;
    try {
      bundle = await Deno.readTextFile(options.caFile);
    } catch (error) {
      throw new Error(`mqtt.ca=${options.caFile}: cannot read the CA bundle: ${errorMessage(error)}`);
    }
    const certificates = splitPem(bundle);
    if (certificates.length === 0) {
      throw new Error(`mqtt.ca=${options.caFile}: no PEM certificate in the file`);
    }
    ca.push(...certificates);
    sources.push(`mqtt.ca (${options.caFile})`);
  } else {
    sources.push("mqtt.ca (not set)");
  }
  return { ca, verify: options.verify, sources };
}

/** The PEM certificate blocks of a bundle. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** One line that says why the broker was refused and names both remedies. */
export function explainVerificationFailure(error: unknown, broker: string, trust: BrokerTrust): string {
  const remedies = `or set mqtt.verify=false to connect without verifying it (insecure)`;
  if (error instanceof BrokerNameMismatchError) {
    return `the certificate of broker ${broker} does not match its address: ${error.message}. ` +
      `Give the broker a certificate that names ${error.address.host}, ` +
      `set mqtt.ca to the PEM bundle of a CA whose certificate for this broker does, ${remedies}`;
  }
  const reason = (error as { message?: string }).message ?? String(error);
  return `cannot verify the certificate of broker ${broker} (${reason}); trusted: ${
    trust.sources.join(", ")
  }. ` +
    `Set mqtt.ca to the PEM bundle of the CA that signed the broker certificate, ${remedies}`;
}
