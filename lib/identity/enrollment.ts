/**
 * The enrollment the IoT Identity service returns and the agent keeps in `.secret`. On disk and on the wire it
 * is the identity service's Go JSON (`[]byte` fields as base64 of PEM text); in memory PEM fields are text.
 * The organisation's private key (key `"-"`, an upstream bug) is tolerated when read and never written back.
 */

/** The device as the identity service registered it. */
export interface EnrolledDevice {
  brand: string;
  model: string;
  serial: string;
  store?: string;
  deviceKey?: string;
}

/** A device enrollment: its id, MQTT credentials and organisation. */
export interface Enrollment {
  /** Device id (a KSUID): MQTT client id and topic suffix. */
  id: string;
  device: EnrolledDevice;
  credentials: {
    /** PEM private key of the client certificate. */
    privateKey: string;
    /** PEM client certificate. */
    certificate: string;
    /** Broker host name. */
    mqttUrl: string;
    /** Broker port (a string, as the identity service sends it). */
    mqttPort: string;
  };
  organization: {
    id: string;
    name: string;
    /** PEM organisation certificate (not the broker's CA, but trusted in addition to it). */
    rootcert: string;
  };
  /** 1 waiting, 2 enrolled, 3 disabled (informational). */
  status: number;
  /** Opaque device data, base64, possibly empty. */
  deviceData: string;
}

/** Decodes standard base64 (padding optional) to bytes. @throws {SyntaxError} */
export function decodeBase64(text: string): Uint8Array {
  try {
    return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(
      text.replace(/\s+/g, ""),
    );
  } catch {
    throw new SyntaxError("not valid base64");
  }
}

function encodeBase64(text: string): string {
  return (new TextEncoder().encode(text) as unknown as { toBase64(): string }).toBase64();
}

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${where} is not an object`);
  }
  return value as Json;
}

function string(from: Json, key: string, where: string, required: boolean): string {
  const value = from[key];
  if (value === undefined || value === null) {
    if (required) throw new TypeError(`${where}.${key} is missing`);
    return "";
  }
  if (typeof value !== "string") throw new TypeError(`${where}.${key} is not a string`);
  if (required && value === "") throw new TypeError(`${where}.${key} is empty`);
  return value;
}

function pem(from: Json, key: string, where: string, marker: RegExp, required: boolean): string {
  const encoded = string(from, key, where, required);
  if (encoded === "") return "";
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64(encoded));
  } catch {
    throw new TypeError(`${where}.${key} is not base64 of PEM text`);
  }
  if (!marker.test(text)) throw new TypeError(`${where}.${key} does not hold the expected PEM block`);
  return text;
}

/**
 * Validates and decodes an enrollment object (from the identity service or a `.secret` file).
 * @throws {TypeError} naming the first field that is missing or wrong.
 */
export function decodeEnrollment(value: unknown): Enrollment {
  const root = object(value, "enrollment");
  const id = string(root, "id", "enrollment", true);
  if (/[/+#\s]/.test(id) || id.length > 256) {
    throw new TypeError("enrollment.id is not usable as an MQTT topic level");
  }
  const device = object(root.device ?? {}, "enrollment.device");
  const credentials = object(root.credentials, "enrollment.credentials");
  const organization = object(root.organization, "enrollment.organization");
  const port = credentials.mqttPort;
  const mqttPort = typeof port === "number"
    ? String(port)
    : string(credentials, "mqttPort", "enrollment.credentials", true);
  if (!/^\d+$/.test(mqttPort) || Number(mqttPort) < 1 || Number(mqttPort) > 65535) {
    throw new TypeError("enrollment.credentials.mqttPort is not a TCP port");
  }
  const status = root.status ?? 0;
  if (typeof status !== "number") throw new TypeError("enrollment.status is not a number");
  const deviceData = string(root, "deviceData", "enrollment", false);
  return {
    id,
    device: {
      brand: string(device, "brand", "enrollment.device", false),
      model: string(device, "model", "enrollment.device", false),
      serial: string(device, "serial", "enrollment.device", false),
      store: string(device, "store", "enrollment.device", false) || undefined,
      deviceKey: string(device, "deviceKey", "enrollment.device", false) || undefined,
    },
    credentials: {
      privateKey: pem(
        credentials,
        "privateKey",
        "enrollment.credentials",
        /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
        true,
      ),
      certificate: pem(
        credentials,
        "certificate",
        "enrollment.credentials",
        /-----BEGIN CERTIFICATE-----/,
        true,
      ),
      mqttUrl: string(credentials, "mqttUrl", "enrollment.credentials", true),
      mqttPort,
    },
    organization: {
      id: string(organization, "id", "enrollment.organization", true),
      name: string(organization, "name", "enrollment.organization", false),
      rootcert: pem(
        organization,
        "rootcert",
        "enrollment.organization",
        /-----BEGIN CERTIFICATE-----/,
        false,
      ),
    },
    status,
    deviceData,
  };
}

/** Serializes an enrollment as the Go agent writes `.secret` (same keys and order), without the `"-"` key. */
export function encodeEnrollment(enrollment: Enrollment): string {
  const { device, credentials, organization } = enrollment;
  return JSON.stringify({
    id: enrollment.id,
    device: {
      brand: device.brand,
      model: device.model,
      serial: device.serial,
      ...(device.store ? { store: device.store } : {}),
      ...(device.deviceKey ? { deviceKey: device.deviceKey } : {}),
    },
    credentials: {
      privateKey: encodeBase64(credentials.privateKey),
      certificate: encodeBase64(credentials.certificate),
      mqttUrl: credentials.mqttUrl,
      mqttPort: credentials.mqttPort,
    },
    organization: {
      id: organization.id,
      name: organization.name,
      rootcert: encodeBase64(organization.rootcert),
    },
    status: enrollment.status,
    deviceData: enrollment.deviceData,
  });
}
