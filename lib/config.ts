/**
 * The configuration of a process: one typed, validated object built once at start from, in rising precedence,
 * the defaults; the snap's configuration (`snapctl get -d`, inside a snap); a JSON file (`--config FILE` or
 * `IOTAGENT_CONFIG`); environment variables (`a.b-c` -> `IOTAGENT_A_B_C`); command-line flags (`--a.b-c=value`).
 * Each value is checked against the table in `settings.ts`; then the rules that tie settings together.
 */
import { sha256Hex } from "./canonical_json.ts";
import { formatDuration } from "./duration.ts";
import {
  type AgentConfig,
  type ConfigKey,
  envName,
  isConfigKey,
  type Setting,
  SETTINGS,
} from "./settings.ts";
import { showValue } from "./shown.ts";
import { hideUserinfo } from "./log.ts";
import type { Snapctl } from "./adapters/snapctl.ts";
import { errorMessage } from "./errors.ts";

/** An invalid setting; the message is the one line shown to the operator. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Where each value came from: `default`, `snap`, `file <path>`, `env <NAME>` or `flag --<key>`. */
export type ConfigOrigins = Record<ConfigKey, string>;

/** Environment variables of the agent that are not settings. */
const OTHER_VARIABLES = new Set(["IOTAGENT_CONFIG", "IOTAGENT_FAILPOINT", "IOTAGENT_DEFAULT_COMMAND"]);

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
  /** What was ignored, for the log (an unknown `IOTAGENT_*` variable: a typo, most likely). */
  warnings: string[];
}

/** A rule between settings: returns what is wrong, or undefined. */
interface CrossRule {
  keys: readonly ConfigKey[];
  check(config: AgentConfig): string | undefined;
}

const CROSS_RULES: CrossRule[] = [
  {
    keys: ["backoff.initial", "backoff.max"],
    check: (config) =>
      config["backoff.initial"] > config["backoff.max"]
        ? `backoff.initial (${formatDuration(config["backoff.initial"])}) must not exceed backoff.max (${
          formatDuration(config["backoff.max"])
        })`
        : undefined,
  },
];

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
      if (!isConfigKey(key)) throw new ConfigError(`unknown configuration key ${showValue(key)} in ${path}`);
      raw.set(key, { value, origin: `file ${path}` });
    }
  }
  for (const key of Object.keys(SETTINGS) as ConfigKey[]) {
    const value = sources.env?.[envName(key)];
    if (value !== undefined) raw.set(key, { value, origin: `env ${envName(key)}` });
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (!isConfigKey(key)) {
      throw new ConfigError(`unknown configuration flag --${showValue(key).slice(1, -1)}`);
    }
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
      const shown = definition.secret ? "(hidden)" : hideUserinfo(showValue(entry.value));
      throw new ConfigError(
        `invalid configuration: ${key}=${shown} (from ${entry.origin}): expected ${definition.allowed}`,
      );
    }
  }
  for (const rule of CROSS_RULES) {
    const problem = rule.check(config as AgentConfig);
    if (problem === undefined) continue;
    const from = rule.keys.map((key) => `${key} from ${origins[key]}`).join(", ");
    throw new ConfigError(`invalid configuration: ${problem} (${from})`);
  }
  return {
    config: config as AgentConfig,
    origins: origins as ConfigOrigins,
    warnings: unknownVariables(sources.env ?? {}),
  };
}

/** `IOTAGENT_*` variables that name no setting, each with the nearest name that does. */
function unknownVariables(env: Record<string, string | undefined>): string[] {
  const known = (Object.keys(SETTINGS) as ConfigKey[]).map(envName);
  return Object.keys(env)
    .filter((name) => name.startsWith("IOTAGENT_") && !known.includes(name) && !OTHER_VARIABLES.has(name))
    .sort()
    .map((name) => {
      const nearest = known.reduce((best, candidate) =>
        editDistance(name, candidate) < editDistance(name, best) ? candidate : best
      );
      const hint = editDistance(name, nearest) <= 3 ? ` (did you mean ${nearest}?)` : "";
      return `unknown environment variable ${name} ignored${hint}`;
    });
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
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
export async function readSnapConfig(inSnap: boolean, snapctl: Snapctl): Promise<unknown> {
  if (!inSnap) return undefined;
  const output = await snapctl(["get", "-d"]);
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
    throw new ConfigError(`cannot read configuration file ${path}: ${errorMessage(error)}`);
  }
  try {
    return { path, content: JSON.parse(body) };
  } catch (error) {
    throw new ConfigError(`invalid configuration file ${path}: ${errorMessage(error)}`);
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
  /** Reads the snap's configuration inside a snap. */
  snapctl: Snapctl;
}

/**
 * Builds the configuration of this process from all sources, and checks that files it names exist.
 * @throws {ConfigError}
 */
export async function loadConfig(options: LoadConfigOptions): Promise<LoadedConfig> {
  const configFile = options.configFile ?? options.env.IOTAGENT_CONFIG;
  const loaded = buildConfig({
    snap: await readSnapConfig(options.inSnap, options.snapctl),
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
        `invalid configuration: ${key}=${showValue(path)} (from ${loaded.origins[key]}): ` +
          `expected a readable PEM file (${errorMessage(error)})`,
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
