/**
 * Every setting of the agent: one typed, validated object built once at start. Sources, in rising precedence:
 * defaults; the snap's configuration (`snapctl get -d`, inside a snap); a JSON file (`--config FILE` or
 * `IOTAGENT_CONFIG`); environment variables (`a.b-c` -> `IOTAGENT_A_B_C`); command-line flags (`--a.b-c=value`).
 */
import { formatDuration, parseDuration } from "./duration.ts";
import { isLogLevel, LOG_LEVELS, type LogLevel } from "./log.ts";
import { sha256Hex } from "./canonical_json.ts";
import { runSnapctl } from "./system/snapctl.ts";

/** An invalid setting; the message is the one line shown to the operator. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The definition of one setting. */
interface Setting<T> {
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

const duration = (fallback: string, description: string, minMs = 0) =>
  setting<number>({
    fallback,
    description,
    allowed: `a Go duration such as 90s, 1h or 1h30m${minMs >= 1000 ? ` (at least ${minMs / 1000}s)` : ""}`,
    show: formatDuration,
    parse(raw) {
      if (typeof raw !== "string") throw new RangeError("not a duration string");
      const ms = parseDuration(raw);
      if (ms < minMs) throw new RangeError("too short");
      return ms;
    },
  });

const oneOf = <T extends string>(values: readonly T[], fallback: T, description: string) =>
  setting<T>({
    fallback,
    description,
    allowed: `one of ${values.join(", ")}`,
    parse(raw) {
      const value = text(raw).trim();
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

const count = (fallback: number, min: number, description: string) =>
  setting<number>({
    fallback: String(fallback),
    description,
    allowed: `a whole number of at least ${min}`,
    parse(raw) {
      const value = typeof raw === "number" ? raw : Number(text(raw).trim());
      if (!Number.isInteger(value) || value < min) throw new RangeError("not a count");
      return value;
    },
  });

const pathTemplate = (fallback: string, description: string) =>
  setting<string>({
    fallback,
    description,
    allowed: "a file path ($VAR and ${VAR} are expanded)",
    parse(raw) {
      const value = text(raw).trim();
      if (value === "") throw new RangeError("empty");
      return value;
    },
  });

/** The default password of user `snapd` on the companion NATS snap. */
export const DEFAULT_NATS_PASSWORD = "accept solve carbon atmosphere";

/** Every setting, by its dotted key. The README's configuration reference lists the same table. */
export const SETTINGS = {
  "snapd.socket": nonEmpty("/run/snapd.socket", "Unix socket of the snapd REST API."),
  "snapd.timeout": duration(
    "2m",
    "Time limit of one snapd request; one that cannot reach snapd is retried inside it.",
    1000,
  ),
  "snapd.max-requests": count(8, 1, "Requests to snapd in flight at once; more wait their turn."),
  "mqtt.ca": optionalPath("PEM bundle of extra CAs trusted for the broker certificate."),
  "mqtt.verify": flag(true, "Verify the broker certificate. false is insecure and logged at every connect."),
  "mqtt.keepalive": duration("30s", "MQTT keep-alive interval.", 1000),
  "mqtt.reconnect-spread": duration(
    "10s",
    "After a broker connection drops, the first reconnect waits a random delay up to this (a fleet spreads out).",
  ),
  "health.interval": duration(
    "60s",
    "Period of health messages (the first goes out right after connect).",
    1000,
  ),
  "metrics.interval": duration("60s", "Period of the memory and cpu metrics messages.", 1000),
  "dms.protocol": oneOf(
    ["2", "legacy"] as const,
    "2",
    "`2`: list v2 and health hashes; `legacy`: 2021 formats.",
  ),
  "nats.enabled": flag(true, "Serve the local NATS API."),
  "nats.url": urlList("nats://localhost:4222", ["nats", "tls"], "NATS servers of the local API."),
  "nats.snapd.password": nonEmpty(DEFAULT_NATS_PASSWORD, "Password of NATS user snapd.", true),
  "nats.ca": optionalPath("PEM bundle of the CA of the NATS server's certificate: connect with TLS."),
  "log.level": logLevel("Level of the agent's log."),
  "snapd.conflict-timeout": duration(
    "2m",
    "How long an action retries while snapd answers 409 snap-change-conflict before it replies with the error.",
  ),
  "uploads.allow-http": flag(
    false,
    "Allow logs and snapshot uploads to plain http URLs (https only by default).",
  ),
  "snaplogger.database.location": pathTemplate("$SNAP_DATA/changes.db", "sqlite database of snap changes."),
  "snaplogger.maximum.changes.keep": count(1000, 1, "Changes kept in the database (the oldest go first)."),
  "snaplogger.duration.between.checks": duration(
    "1h",
    "Period of the change logger's look at snapd's changes.",
    1000,
  ),
  "snaplogger.log.changes.startup": flag(true, "At start, log the changes less than 24 h old."),
  "snaplogger.log.level": logLevel(
    "Level of the change logger only; below info it stops logging, storing goes on.",
  ),
  "watchdog.change.timeout": duration(
    "1h",
    "A change the watchdog has seen in progress this long is hung (measured on a monotonic clock).",
    1000,
  ),
  "watchdog.check.interval": duration("1m", "Period of the watchdog's look for hung changes.", 1000),
  "watchdog.reboot": flag(
    true,
    "Reboot the device for a hung change (false: write the report and log only).",
  ),
  "backoff.initial": duration("1s", "Ceiling of the first retry delay (enrollment, broker reconnect).", 1),
  "backoff.max": duration("2m", "Cap of every retry delay; each delay is drawn at random below it.", 1),
} as const;

/** A setting's dotted key. */
export type ConfigKey = keyof typeof SETTINGS;

/** The validated configuration: each key's parsed value. */
export type AgentConfig = { readonly [K in ConfigKey]: ReturnType<typeof SETTINGS[K]["parse"]> };

/** Where each value came from: `default`, `snap`, `file <path>`, `env <NAME>` or `flag --<key>`. */
export type ConfigOrigins = Record<ConfigKey, string>;

/** The environment variable of a key: `nats.snapd.password` -> `IOTAGENT_NATS_SNAPD_PASSWORD`. */
export function envName(key: string): string {
  return "IOTAGENT_" + key.replace(/[.-]/g, "_").toUpperCase();
}

/** True when `key` names a setting. */
export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(SETTINGS, key);
}

/** Raw inputs of {@link buildConfig}; each is optional. */
export interface ConfigSources {
  /** The snap's configuration as `snapctl get -d` prints it (nested JSON). Unknown keys are ignored. */
  snap?: unknown;
  /** The configuration file, already parsed, and its path. Unknown keys are an error (typos). */
  file?: { path: string; content: unknown };
  /** Environment variables. */
  env?: Record<string, string | undefined>;
  /** `--key=value` flags, by key. Unknown keys are an error. */
  flags?: Record<string, string>;
}

/** The result of {@link buildConfig}. */
export interface LoadedConfig {
  config: AgentConfig;
  origins: ConfigOrigins;
}

/**
 * Merges the sources in precedence order and validates every value.
 * @throws {ConfigError} naming the key, the value, where it came from and what is allowed.
 */
export function buildConfig(sources: ConfigSources): LoadedConfig {
  const raw = new Map<ConfigKey, { value: unknown; origin: string }>();
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) {
    const fallback = SETTINGS[key].fallback;
    if (fallback !== undefined) raw.set(key, { value: fallback, origin: "default" });
  }
  if (sources.snap !== undefined) {
    for (const [key, value] of flatten(sources.snap)) {
      if (isConfigKey(key) && value !== null) raw.set(key, { value, origin: "snap" });
    }
  }
  if (sources.file) {
    const { path, content } = sources.file;
    if (typeof content !== "object" || content === null || Array.isArray(content)) {
      throw new ConfigError(`invalid configuration file ${path}: expected a JSON object`);
    }
    for (const [key, value] of flatten(content)) {
      if (!isConfigKey(key)) throw new ConfigError(`unknown configuration key "${key}" in ${path}`);
      raw.set(key, { value, origin: `file ${path}` });
    }
  }
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) {
    const value = sources.env?.[envName(key)];
    if (value !== undefined) raw.set(key, { value, origin: `env ${envName(key)}` });
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (!isConfigKey(key)) throw new ConfigError(`unknown configuration flag --${key}`);
    raw.set(key, { value, origin: `flag --${key}` });
  }

  const config: Record<string, unknown> = {};
  const origins: Record<string, string> = {};
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) {
    const entry = raw.get(key);
    const definition: Setting<unknown> = SETTINGS[key];
    origins[key] = entry?.origin ?? "default";
    if (entry === undefined) {
      config[key] = undefined;
      continue;
    }
    try {
      config[key] = definition.parse(entry.value);
    } catch {
      const shown = definition.secret ? "(hidden)" : JSON.stringify(entry.value);
      throw new ConfigError(
        `invalid configuration: ${key}=${shown} (from ${entry.origin}): expected ${definition.allowed}`,
      );
    }
  }
  return { config: config as AgentConfig, origins: origins as ConfigOrigins };
}

/** Flattens nested objects to dotted keys; a dotted key may also be given as is (`{"mqtt.ca": …}`). */
function flatten(value: unknown, prefix = ""): [string, unknown][] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [[prefix, value]];
  const out: [string, unknown][] = [];
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isConfigKey(path)) out.push([path, child]);
    else out.push(...flatten(child, path));
  }
  return out;
}

/** The configuration as lines for the start-up log, secrets masked. */
export function describeConfig({ config, origins }: LoadedConfig): string[] {
  return (Object.keys(SETTINGS) as ConfigKey[]).map((key) => {
    const definition: Setting<unknown> = SETTINGS[key];
    const value = config[key];
    const shown = value === undefined
      ? "(unset)"
      : definition.secret
      ? "***"
      : definition.show?.(value) ?? JSON.stringify(value);
    return `${key}=${shown} (${origins[key]})`;
  });
}

/** Reads the snap's whole configuration with `snapctl get -d`; `undefined` outside a snap. */
export async function readSnapConfig(inSnap: boolean): Promise<unknown> {
  if (!inSnap) return undefined;
  const output = await runSnapctl(["get", "-d"]);
  if (!output.success) {
    throw new ConfigError(`cannot read the snap configuration (snapctl get -d): ${output.stderr}`);
  }
  const textOut = output.stdout;
  if (textOut === "") return {};
  try {
    return JSON.parse(textOut);
  } catch {
    throw new ConfigError("cannot read the snap configuration: snapctl get -d printed invalid JSON");
  }
}

/** Reads and parses the configuration file. */
export async function readConfigFile(path: string): Promise<{ path: string; content: unknown }> {
  let body: string;
  try {
    body = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(error as Error).message}`);
  }
  try {
    return { path, content: JSON.parse(body) };
  } catch (error) {
    throw new ConfigError(`invalid configuration file ${path}: ${(error as Error).message}`);
  }
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** `--key=value` flags, by key. */
  flags?: Record<string, string>;
  /** `--config FILE`; falls back to `IOTAGENT_CONFIG`. */
  configFile?: string;
  env: Record<string, string | undefined>;
  inSnap: boolean;
}

/**
 * Builds the configuration of this process from all sources, and checks that files it names exist.
 * @throws {ConfigError}
 */
export async function loadConfig(options: LoadConfigOptions): Promise<LoadedConfig> {
  const configFile = options.configFile ?? options.env.IOTAGENT_CONFIG;
  const loaded = buildConfig({
    snap: await readSnapConfig(options.inSnap),
    file: configFile ? await readConfigFile(configFile) : undefined,
    env: options.env,
    flags: options.flags,
  });
  for (const key of ["mqtt.ca", "nats.ca"] as const) {
    const path = loaded.config[key];
    if (path === undefined) continue;
    try {
      if (!(await Deno.stat(path)).isFile) throw new Error("not a file");
    } catch (error) {
      throw new ConfigError(
        `invalid configuration: ${key}=${JSON.stringify(path)} (from ${loaded.origins[key]}): ` +
          `expected a readable PEM file (${(error as Error).message})`,
      );
    }
  }
  return loaded;
}

/** The settings each daemon reads: a change of any of them needs a restart of that daemon. */
const DAEMON_KEYS: Record<"agent" | "watchdog", (key: ConfigKey) => boolean> = {
  agent: (key) => !key.startsWith("snaplogger.") && !key.startsWith("watchdog."),
  watchdog: (key) => /^(snapd|snaplogger|watchdog|log)\./.test(key),
};

/** A digest of the settings a daemon reads (SHA-256 hex), for the configure hook to restart only what changed. */
export async function settingsDigest(config: AgentConfig, daemon: "agent" | "watchdog"): Promise<string> {
  const keys = (Object.keys(SETTINGS) as ConfigKey[]).filter(DAEMON_KEYS[daemon]);
  // prefixed so that `snapctl set` cannot mistake it for a JSON number
  return "sha256:" + await sha256Hex(JSON.stringify(keys.map((key) => [key, config[key] ?? null])));
}
