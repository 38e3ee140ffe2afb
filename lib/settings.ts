/**
 * The table of every setting: its key, default, meaning, and the rule its values follow. `lib/config.ts` reads
 * the sources (snap, file, environment, flags) and checks every raw value against this table.
 *
 * One rule for letter case across every key: the words of a value — `true`/`false`, log levels, `dms.protocol`,
 * duration units — are read in any letter case; paths, URLs and passwords are taken exactly as written. Keys are
 * lower case (snapd allows no other).
 */
import { formatDuration, parseDuration } from "./duration.ts";
import { hideUserinfo, isLogLevel, LOG_LEVELS, type LogLevel } from "./log.ts";
import { parseBrokerEntry } from "./mqtt/broker_address.ts";

/** The definition of one setting. */
export interface Setting<T> {
  /** The default as an operator would type it; `undefined` means unset. */
  readonly fallback: string | undefined;
  readonly description: string;
  /** What is allowed, for error messages and the README. */
  readonly allowed: string;
  readonly secret?: boolean;
  /** Shows a parsed value the way an operator writes it. @default JSON */
  show?(value: T): string;
  /** Converts a raw value (string from env/flags, any JSON value from files) or throws a RangeError. */
  parse(raw: unknown): T;
}

const setting = <T>(definition: Setting<T>): Setting<T> => definition;

function text(raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (typeof raw === "number" || typeof raw === "boolean") return String(raw);
  throw new RangeError("not a string");
}

/** The longest duration Go can hold (2^63−1 ns), the limit of every duration setting, in ms. */
export const MAX_DURATION_MS = 9_223_372_036_854.775;

const nonEmpty = (fallback: string | undefined, description: string, secret = false) =>
  setting<string>({
    fallback,
    description,
    allowed: "a non-empty string",
    secret,
    parse(raw) {
      const value = text(raw);
      if (value === "") throw new RangeError("empty");
      return value;
    },
  });

const absolutePath = (fallback: string, description: string) =>
  setting<string>({
    fallback,
    description,
    allowed: "an absolute path",
    parse(raw) {
      const value = text(raw).trim();
      if (!value.startsWith("/")) throw new RangeError("not absolute");
      return value;
    },
  });

const optionalPath = (description: string) =>
  setting<string | undefined>({
    fallback: undefined,
    description,
    allowed: "an absolute file path, or empty for none",
    parse(raw) {
      const value = text(raw).trim();
      if (value === "") return undefined;
      if (!value.startsWith("/")) throw new RangeError("not absolute");
      return value;
    },
  });

const proxyUrl = (description: string) =>
  setting<string | undefined>({
    fallback: undefined,
    description,
    allowed: "an http:// proxy URL (http://[user:password@]host:port), or empty for none",
    secret: true, // it may hold a password
    parse(raw) {
      const value = text(raw).trim();
      if (value === "") return undefined;
      const url = URL.parse(value);
      if (!url || url.protocol !== "http:" || !url.hostname) throw new RangeError("not an http proxy URL");
      return value;
    },
  });

const hostList = (description: string) =>
  setting<string | undefined>({
    fallback: undefined,
    description,
    allowed: "a comma-separated list of host names, domains (.example.com), IP addresses or *, or empty",
    parse(raw) {
      const value = text(raw).trim();
      if (value === "") return undefined;
      if (/[\s/]/.test(value.replace(/,\s*/g, ","))) throw new RangeError("not a host list");
      return value;
    },
  });

const brokerList = (description: string) =>
  setting<string[] | undefined>({
    fallback: undefined,
    description,
    allowed:
      "a comma-separated list of host:port (an IPv6 address in brackets: [2001:db8::1]:8883), or empty",
    show: (value) => value?.join(",") ?? "",
    parse(raw) {
      const entries = text(raw).split(",").map((part) => part.trim()).filter((part) => part !== "");
      if (entries.length === 0) return undefined;
      return entries.map((entry) => {
        try {
          return parseBrokerEntry(entry).label;
        } catch {
          throw new RangeError("not host:port");
        }
      });
    },
  });

const flag = (fallback: boolean, description: string) =>
  setting<boolean>({
    fallback: String(fallback),
    description,
    allowed: "true or false",
    parse(raw) {
      if (typeof raw === "boolean") return raw;
      const value = text(raw).trim().toLowerCase();
      if (value === "true") return true;
      if (value === "false") return false;
      throw new RangeError("not a boolean");
    },
  });

const duration = (
  fallback: string,
  description: string,
  limits: { minMs?: number; maxMs?: number } = {},
) => {
  const { minMs = 0, maxMs = MAX_DURATION_MS } = limits;
  return setting<number>({
    fallback,
    description,
    allowed: `a Go duration such as 90s, 1h or 1h30m, from ${formatDuration(minMs)} to ${
      formatDuration(maxMs)
    }`,
    show: formatDuration,
    parse(raw) {
      if (typeof raw !== "string") throw new RangeError("not a duration string");
      const ms = parseDuration(raw.toLowerCase());
      if (!(ms >= minMs && ms <= maxMs)) throw new RangeError("out of range");
      return ms;
    },
  });
};

const oneOf = <T extends string>(values: readonly T[], fallback: T, description: string) =>
  setting<T>({
    fallback,
    description,
    allowed: `one of ${values.join(", ")}`,
    parse(raw) {
      const value = text(raw).trim().toLowerCase();
      if (!(values as readonly string[]).includes(value)) throw new RangeError("not allowed");
      return value as T;
    },
  });

const logLevel = (description: string) =>
  setting<LogLevel>({
    fallback: "info",
    description,
    allowed: `one of ${LOG_LEVELS.join(", ")}`,
    parse(raw) {
      const value = text(raw).trim().toLowerCase();
      if (value === "warning") return "warn";
      if (!isLogLevel(value)) throw new RangeError("not a level");
      return value;
    },
  });

const urlList = (fallback: string, schemes: string[], description: string) =>
  setting<string[]>({
    fallback,
    description,
    allowed: `a comma-separated list of ${schemes.join(" or ")} URLs`,
    // nats://user:password@host is allowed: its password must not reach the start-up log
    show: (urls) => urls.map(hideUserinfo).join(","),
    parse(raw) {
      const urls = text(raw).split(",").map((part) => part.trim()).filter((part) => part !== "");
      if (urls.length === 0) throw new RangeError("empty");
      for (const url of urls) {
        const parsed = URL.parse(url);
        if (!parsed || !schemes.includes(parsed.protocol.replace(/:$/, ""))) throw new RangeError("bad url");
      }
      return urls;
    },
  });

const count = (fallback: number, min: number, max: number, description: string) =>
  setting<number>({
    fallback: String(fallback),
    description,
    allowed: `a whole number from ${min} to ${max}, digits only`,
    parse(raw) {
      const digits = typeof raw === "number" ? raw : /^\d+$/.test(text(raw).trim()) ? Number(text(raw)) : NaN;
      if (!Number.isSafeInteger(digits) || digits < min || digits > max) throw new RangeError("not a count");
      return digits;
    },
  });

const pathTemplate = (fallback: string, description: string) =>
  setting<string>({
    fallback,
    description,
    allowed: "an absolute file path; it may start with $VAR or ${VAR}, which are expanded",
    parse(raw) {
      const value = text(raw).trim();
      if (!/^(\/|\$)/.test(value)) throw new RangeError("not absolute");
      return value;
    },
  });

/** The default password of user `snapd` on the companion NATS snap. */
export const DEFAULT_NATS_PASSWORD = "accept solve carbon atmosphere";

/** MQTT's keep-alive is a 16-bit number of seconds. */
const MAX_KEEPALIVE_MS = 65_535_000;

/** Every setting, by its dotted key. The README's configuration reference lists the same table. */
export const SETTINGS = {
  "snapd.socket": absolutePath("/run/snapd.socket", "Unix socket of the snapd REST API."),
  "snapd.timeout": duration(
    "2m",
    "Time limit of one snapd request; one that cannot reach snapd is retried inside it.",
    { minMs: 1000 },
  ),
  "snapd.max-requests": count(8, 1, 1000, "Requests to snapd in flight at once; more wait their turn."),
  "mqtt.ca": optionalPath("PEM bundle of extra CAs trusted for the broker certificate."),
  "mqtt.verify": flag(true, "Verify the broker certificate. false is insecure and logged at every connect."),
  "mqtt.keepalive": duration("30s", "MQTT keep-alive interval.", { minMs: 1000, maxMs: MAX_KEEPALIVE_MS }),
  "mqtt.reconnect-spread": duration(
    "10s",
    "After a broker connection drops, the first reconnect waits a random delay up to this (a fleet spreads out).",
  ),
  "mqtt.max-reply-bytes": count(
    131072,
    1024,
    268_435_455,
    "Largest reply to the DMS (its MQTT packet), in bytes; a larger one is replaced by an error naming its size.",
  ),
  "mqtt.brokers": brokerList(
    "Extra brokers, tried in order after the one the identity service names, with the same client certificate.",
  ),
  "mqtt.failback-interval": duration(
    "1m",
    "While on a broker other than the first, how often the first is tried; the agent moves back once it answers.",
    { minMs: 1000 },
  ),
  "health.interval": duration(
    "60s",
    "Period of health messages (the first goes out right after connect).",
    { minMs: 1000 },
  ),
  "metrics.interval": duration("60s", "Period of the memory and cpu metrics messages.", { minMs: 1000 }),
  "health.unreachable-error": duration(
    "10m",
    "After this long without a broker connection, the snap's health (snap info) says error.",
    { minMs: 1000 },
  ),
  "dms.protocol": oneOf(
    ["2", "legacy"] as const,
    "2",
    "`2`: list v2 and health hashes; `legacy`: 2021 formats.",
  ),
  "nats.enabled": flag(true, "Serve the local NATS API."),
  "nats.url": urlList("nats://localhost:4222", ["nats", "tls"], "NATS servers of the local API."),
  "nats.snapd.password": nonEmpty(DEFAULT_NATS_PASSWORD, "Password of NATS user snapd.", true),
  "nats.ca": optionalPath("PEM bundle of the CA of the NATS server's certificate: connect with TLS."),
  "nats.max-in-flight": count(
    32,
    1,
    10_000,
    "Local API requests handled at once; more wait (nats.max-waiting), beyond that they are answered busy.",
  ),
  "nats.max-waiting": count(
    256,
    0,
    100_000,
    "Local API requests waiting for a turn at most; beyond it a request is answered at once: busy, try again.",
  ),
  "nats.max-waiting-bytes": count(
    4_194_304,
    1024,
    1_073_741_824,
    "Payload bytes of the waiting local API requests at most; beyond it a request is answered busy.",
  ),
  "log.level": logLevel("Level of the agent's log."),
  "proxy.http": proxyUrl(
    "HTTP proxy for plain http (the identity service, uploads); before HTTP_PROXY and snapd's.",
  ),
  "proxy.https": proxyUrl(
    "HTTP proxy for everything over TLS (the broker, https); CONNECT tunnels. Before HTTPS_PROXY and snapd's.",
  ),
  "proxy.no-proxy": hostList("Hosts reached without a proxy; before NO_PROXY and snapd's proxy.no-proxy."),
  "snapd.conflict-timeout": duration(
    "2m",
    "How long an action retries while snapd answers 409 snap-change-conflict before it replies with the error.",
  ),
  "identity.allow-insecure-http": flag(
    false,
    "Allow an http:// identity service URL outside loopback: anyone on the path reads the device's key (insecure).",
  ),
  "uploads.allow-http": flag(
    false,
    "Allow logs and snapshot uploads to plain http URLs (https only by default).",
  ),
  "actions.max-waiting": count(
    64,
    1,
    100_000,
    "DMS actions waiting in memory at most (queued or running, not answered); beyond it the broker holds the rest.",
  ),
  "actions.max-waiting-bytes": count(
    4_194_304,
    1024,
    1_073_741_824,
    "Bytes of the DMS actions waiting in memory at most; beyond it the broker holds the rest (PUBACK withheld).",
  ),
  "journal.max-bytes": count(
    16_777_216,
    65_536,
    1_073_741_824,
    "Bytes of requests and replies agent.db keeps at most; beyond it the oldest answered ids are forgotten.",
  ),
  "uploads.timeout": duration(
    "10m",
    "Time limit of one logs or snapshot upload, from its first byte to the server's answer.",
    { minMs: 1000 },
  ),
  "snaplogger.database.location": pathTemplate("$SNAP_DATA/changes.db", "sqlite database of snap changes."),
  "snaplogger.maximum.changes.keep": count(
    1000,
    1,
    1_000_000,
    "Changes kept in the database (the oldest go first).",
  ),
  "snaplogger.duration.between.checks": duration(
    "1h",
    "Period of the change logger's look at snapd's changes.",
    { minMs: 1000 },
  ),
  "snaplogger.log.changes.startup": flag(true, "At start, log the changes less than 24 h old."),
  "snaplogger.log.level": logLevel(
    "Level of the change logger only; below info it stops logging, storing goes on.",
  ),
  "watchdog.change.timeout": duration(
    "1h",
    "A change the watchdog has seen in progress this long is hung (measured on a monotonic clock).",
    { minMs: 1000 },
  ),
  "watchdog.check.interval": duration("1m", "Period of the watchdog's look for hung changes.", {
    minMs: 1000,
  }),
  "watchdog.reboot": flag(
    true,
    "Reboot the device for a hung change (false: write the report and log only).",
  ),
  "backoff.initial": duration("1s", "Ceiling of the first retry delay (enrollment, broker reconnect).", {
    minMs: 1,
  }),
  "backoff.max": duration("2m", "Cap of every retry delay; each delay is drawn at random below it.", {
    minMs: 1,
  }),
} as const;

/** A setting's dotted key. */
export type ConfigKey = keyof typeof SETTINGS;

/** The validated configuration: each key's parsed value. */
export type AgentConfig = { readonly [K in ConfigKey]: ReturnType<typeof SETTINGS[K]["parse"]> };

/** The environment variable of a key: `nats.snapd.password` -> `IOTAGENT_NATS_SNAPD_PASSWORD`. */
export function envName(key: string): string {
  return "IOTAGENT_" + key.replace(/[.-]/g, "_").toUpperCase();
}

/** True when `key` names a setting. */
export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(SETTINGS, key);
}
