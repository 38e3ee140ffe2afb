/** Files exactly as the Go agent (everactive/iot-agent 2021.06) wrote them, for drop-in replacement tests. */
import type { Issued } from "./pki.ts";

/** What a Go-written `.secret` holds. */
export interface GoSecretParts {
  id: string;
  client: Issued;
  organization: Issued;
  mqttUrl: string;
  mqttPort: string;
  organizationId?: string;
  serial?: string;
  deviceData?: string;
}

/**
 * A `.secret` as the Go agent writes it: the identity service's key order, PEM as base64, and the organisation's
 * private key under the key `"-"` (an upstream bug the agent must tolerate).
 */
export function goSecret(parts: GoSecretParts, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    id: parts.id,
    device: {
      brand: "peerbrand",
      model: "peer-model",
      serial: parts.serial ?? "PEER0001",
      deviceKey: "AcbA\nQpe",
    },
    credentials: {
      privateKey: btoa(parts.client.keyPem),
      certificate: btoa(parts.client.certPem),
      mqttUrl: parts.mqttUrl,
      mqttPort: parts.mqttPort,
    },
    organization: {
      id: parts.organizationId ?? "abc",
      name: "Example Inc",
      rootcert: btoa(parts.organization.certPem),
      "-": btoa(parts.organization.keyPem),
    },
    status: 2,
    deviceData: parts.deviceData ?? "SGVsbG8gYmFzZSA2NCB3b3JsZA==",
    ...overrides,
  });
}

/** `params` as the Go agent writes it: `{"url","path"}`, compact. */
export function goParams(url: string, secretPath: string): string {
  return JSON.stringify({ url, path: secretPath });
}
