/**
 * The agent's logger: one line per record, one category per subsystem, a level per logger, and secrets
 * masked before anything is written. In a snap the lines go to the journal through stderr.
 */

/** Log levels, most verbose first. `off` silences a logger. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "off"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Structured extras printed after the message as `key=value`. */
export type LogFields = Record<string, unknown>;

/**
 * One record as the logger made it, before it became a line: level, category, message and fields apart, with
 * every registered secret already masked. Tests ask about records rather than match the formatted text.
 */
export interface LogRecord {
  level: Exclude<LogLevel, "off">;
  category: string;
  message: string;
  fields: LogFields;
}

/** Where records go: the formatted line, and the record it was made from. */
export interface LogSink {
  write(line: string, record: LogRecord): void;
}

/** A logger for one category. */
export interface Logger {
  readonly category: string;
  readonly level: LogLevel;
  trace(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for a sub-category (`parent.child`), with its own level when given. */
  child(category: string, level?: LogLevel): Logger;
  /** True when a record at `level` would be written. */
  enabled(level: LogLevel): boolean;
}

const secrets = new Set<string>();
/** Every form of every secret, longest first (so a longer form is masked before a part of it). */
let masks: string[] = [];

/**
 * Registers a value that must never appear in a log line (passwords, keys). Every line is scanned and each
 * occurrence replaced by `***` — the value as it is, and the forms it takes in a formatted line: JSON-escaped (a
 * quoted field value: `"` and `\\` escaped) and with control characters escaped. Values shorter than 4
 * characters are ignored (they would mask ordinary text).
 */
export function addSecret(value: string | undefined): void {
  if (!value || value.length < 4 || secrets.has(value)) return;
  secrets.add(value);
  const json = JSON.stringify(value).slice(1, -1);
  for (const form of [value, json, escapeControl(value), escapeControl(json)]) {
    if (!masks.includes(form)) masks.push(form);
  }
  masks = masks.sort((a, b) => b.length - a.length);
}

/**
 * `scheme://user:password@` anywhere in a text: up to the last `@` before a `/`, `?`, `#`, quote or space (a
 * password may hold an unescaped `@` or `,`; the next URL of a list starts after its `//`).
 */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"']+@/gi;

/** `text` with the user name and password of every URL in it replaced by `***` (`nats://***@host:4222`). */
export function hideUserinfo(text: string): string {
  return text.replace(USERINFO, "$1***@");
}

/**
 * Replaces every form of every registered secret in `text` by `***`, and every URL's userinfo: a setting such as
 * `nats.url` may carry a password nobody registered.
 */
export function redact(text: string): string {
  let out = text;
  for (const mask of masks) {
    if (out.includes(mask)) out = out.split(mask).join("***");
  }
  return hideUserinfo(out);
}

/** Writes lines to stderr synchronously, so nothing is lost or reordered when the process exits. */
export const stderrSink: LogSink = {
  write(line: string) {
    const bytes = new TextEncoder().encode(line + "\n");
    let written = 0;
    while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
  },
};

/** What {@link MemorySink.records} selects: every given part must hold. */
export interface RecordQuery {
  level?: LogRecord["level"];
  /** The logger's category, or one of its parents' (`agent` selects `agent.mqtt` too). */
  category?: string;
  /** The message: equal to a string, or matching a pattern. */
  message?: string | RegExp;
  /** Fields that must be present with these values. */
  fields?: LogFields;
}

/** Keeps lines and records in memory; for tests. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  readonly #records: LogRecord[] = [];
  write(line: string, record: LogRecord): void {
    this.lines.push(line);
    this.#records.push(record);
  }
  /** Lines that match `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }
  /** The records that fit `query`, in the order they were written. */
  records(query: RecordQuery = {}): LogRecord[] {
    return this.#records.filter((record) => fits(record, query));
  }
}

function fits(record: LogRecord, query: RecordQuery): boolean {
  const { level, category, message, fields } = query;
  if (level !== undefined && record.level !== level) return false;
  if (category !== undefined && record.category !== category && !record.category.startsWith(category + ".")) {
    return false;
  }
  if (typeof message === "string" && record.message !== message) return false;
  if (message instanceof RegExp && !message.test(record.message)) return false;
  return Object.entries(fields ?? {}).every(([key, value]) =>
    JSON.stringify(record.fields[key]) === JSON.stringify(value)
  );
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevel;
  /** @default stderrSink */
  sink?: LogSink;
  /** Prefix each line with an ISO 8601 timestamp. @default true */
  timestamps?: boolean;
}

/** Creates the root logger of a process. */
export function createLogger(category: string, options: LoggerOptions = {}): Logger {
  return new LineLogger(
    category,
    options.level ?? "info",
    options.sink ?? stderrSink,
    options.timestamps ?? true,
  );
}

/** True when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

class LineLogger implements Logger {
  constructor(
    readonly category: string,
    readonly level: LogLevel,
    private readonly sink: LogSink,
    private readonly timestamps: boolean,
  ) {}

  enabled(level: LogLevel): boolean {
    return level !== "off" && LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.level);
  }

  trace(message: string, fields?: LogFields) {
    this.emit("trace", message, fields);
  }
  debug(message: string, fields?: LogFields) {
    this.emit("debug", message, fields);
  }
  info(message: string, fields?: LogFields) {
    this.emit("info", message, fields);
  }
  warn(message: string, fields?: LogFields) {
    this.emit("warn", message, fields);
  }
  error(message: string, fields?: LogFields) {
    this.emit("error", message, fields);
  }

  child(category: string, level?: LogLevel): Logger {
    return new LineLogger(`${this.category}.${category}`, level ?? this.level, this.sink, this.timestamps);
  }

  private emit(level: LogRecord["level"], message: string, fields?: LogFields) {
    if (!this.enabled(level)) return;
    const parts: string[] = [];
    if (this.timestamps) parts.push(new Date().toISOString());
    // secrets go before anything is escaped: an escaped secret no longer looks like itself
    const clear = redact(message);
    parts.push(level.toUpperCase().padEnd(5), `${this.category}:`, clear);
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value !== undefined) parts.push(`${key}=${formatValue(value)}`);
    }
    this.sink.write(redact(escapeControl(parts.join(" "))), {
      level,
      category: this.category,
      message: clear,
      fields: redactFields(fields ?? {}),
    });
  }
}

/**
 * Escapes control characters (C0, DEL, C1, and the Unicode line and paragraph separators) as `\uXXXX`: values
 * from payloads reach log lines, and a newline in an action name must not forge a line of its own, nor a NUL or
 * an escape sequence reach the journal or a terminal. A record is always exactly one line.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** The fields with every string, and every error's message, masked (the formatted line masks the rest). */
function redactFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = typeof value === "string"
      ? redact(value)
      : value instanceof Error
      ? redact(value.message)
      : value;
  }
  return out;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(redact(value.message));
  if (typeof value === "string") {
    const clear = redact(value);
    return /^[\w.:/@+-]+$/.test(clear) ? clear : JSON.stringify(clear);
  }
  return JSON.stringify(value) ?? String(value);
}
