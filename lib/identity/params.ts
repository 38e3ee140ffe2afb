/**
 * `params`: `{"url":"<identity service URL>","path":"<credentials path>"}` (this key order, compact, 0600), as
 * the Go agent and its `configure` command wrote it. A device without `params` (or with an empty `url`) is not
 * configured yet: the agent waits for an operator to set the URL.
 */
import { type AgentPaths } from "../paths.ts";
import { moveAside, readTextIfExists, removeIfExists, writeFileAtomic } from "../files.ts";
import type { Logger } from "../log.ts";
import { showValue } from "../shown.ts";
import { errorMessage } from "../errors.ts";

/** The identity service settings. */
export interface Params {
  /** Base URL of the IoT Identity service. */
  url: string;
  /** Where the Go agent kept the credentials; informational (we use `$SNAP_DATA/.secret`). */
  path: string;
}

/** Options of {@link validateIdentityUrl} and {@link ParamsFile}. */
export interface IdentityUrlOptions {
  /**
   * `identity.allow-insecure-http`: accept `http://` to a host outside loopback, where anyone on the path reads
   * the device's private key and can swap the organisation root certificate. @default false
   */
  allowInsecureHttp?: boolean;
}

/**
 * Checks an identity service URL exactly as it will be stored and used: https (http only to a loopback host,
 * or with `allowInsecureHttp`), a host, nothing that the URL parser would quietly drop or rewrite (control
 * characters, white space) and no credentials (they would be stored in clear and shown in every message).
 * @throws {TypeError} one line saying what is wrong; a password in the URL is never repeated.
 */
export function validateIdentityUrl(url: string, options: IdentityUrlOptions = {}): string {
  const problem = identityUrlProblem(url) ?? clearTextProblem(url, options);
  if (problem) {
    throw new TypeError(
      `invalid identity service URL ${showValue(withoutCredentials(url))}: ${problem}; ` +
        `expected https://host[:port][/path]`,
    );
  }
  return url;
}

/** Longer URLs are refused: no identity service needs one, and a paste gone wrong should not be stored. */
const MAX_URL_LENGTH = 2048;

function identityUrlProblem(url: string): string | undefined {
  if (url.length > MAX_URL_LENGTH) return `it is longer than ${MAX_URL_LENGTH} characters`;
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(url)) return "it contains a control character";
  if (/\s/.test(url)) return "it contains white space";
  const parsed = URL.parse(url);
  if (!parsed) return "it is not a URL";
  if (!["http:", "https:"].includes(parsed.protocol)) {
    return `its scheme is ${parsed.protocol} (not http or https)`;
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return "it carries a user name or password, which the identity service does not use";
  }
  if (parsed.hostname === "") return "it has no host";
  return undefined;
}

/**
 * True when an enrollment from `url` crosses a network in clear text: `http://` to a host outside loopback
 * (127.0.0.0/8, ::1, `localhost`). Such an answer's root certificate may have been swapped on the way.
 */
export function travelsInClearText(url: string): boolean {
  const parsed = URL.parse(url);
  return parsed?.protocol === "http:" && !isLoopbackHost(parsed.hostname);
}

/** 127.0.0.0/8, ::1 and `localhost` (with or without a trailing dot): traffic that never leaves the device. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (host === "localhost" || host === "::1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function clearTextProblem(url: string, options: IdentityUrlOptions): string | undefined {
  if (options.allowInsecureHttp || !travelsInClearText(url)) return undefined;
  return "plain http outside loopback lets anyone on the path read the device's private key and swap the " +
    "broker's root certificate; use https, or set identity.allow-insecure-http=true (insecure)";
}

/** The URL with any `user:password@` replaced, for messages. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1***@");
}

/** What `params` holds. */
export type ParamsState =
  | { kind: "absent" }
  | { kind: "corrupt"; error: string }
  /** There, but without a URL: not configured. */
  | { kind: "empty" }
  /** There, with a URL the settings refuse (plain http outside loopback): not used. */
  | { kind: "refused"; url: string; error: string }
  | { kind: "configured"; params: Params };

/** Reads and writes `params`. */
export class ParamsFile {
  constructor(
    private readonly paths: Pick<AgentPaths, "params" | "credentialsPathForParams">,
    private readonly log: Logger,
    private readonly options: IdentityUrlOptions = {},
  ) {}

  /** The last refusal logged, so a polled `params` says it once, not every poll. */
  #refusalLogged: string | undefined;

  /** The file's path. */
  get path(): string {
    return this.paths.params;
  }

  /** What `params` holds, without touching it: for `doctor`, which must change nothing. */
  async inspect(): Promise<ParamsState> {
    const text = await readTextIfExists(this.paths.params);
    if (text === undefined) return { kind: "absent" };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new TypeError("not an object");
      }
    } catch (error) {
      return { kind: "corrupt", error: errorMessage(error) };
    }
    const { url, path } = parsed as { url?: unknown; path?: unknown };
    if (typeof url !== "string" || url.trim() === "") return { kind: "empty" };
    try {
      // the Go agent's configure wrote any URL: it is checked here as `configure --url` checks it
      validateIdentityUrl(url.trim(), this.options);
    } catch (error) {
      return { kind: "refused", url: url.trim(), error: errorMessage(error) };
    }
    return {
      kind: "configured",
      params: {
        url: url.trim(),
        path: typeof path === "string" && path !== "" ? path : this.paths.credentialsPathForParams,
      },
    };
  }

  /**
   * The current settings, or `undefined` when not configured. A corrupt file is moved aside (reported) so the
   * next `configure` starts clean.
   */
  async read(): Promise<Params | undefined> {
    const state = await this.inspect();
    if (state.kind === "corrupt") {
      const aside = await moveAside(this.paths.params);
      this.log.error(`${this.paths.params} is corrupt (${state.error}); moved to ${aside}`);
    }
    if (state.kind === "refused" && state.error !== this.#refusalLogged) {
      this.log.error(`${this.paths.params}: ${state.error}`);
    }
    this.#refusalLogged = state.kind === "refused" ? state.error : undefined;
    return state.kind === "configured" ? state.params : undefined;
  }

  /** Removes `params` (unregister); returns whether it existed. */
  async remove(): Promise<boolean> {
    return await removeIfExists(this.paths.params);
  }

  /** Writes `{"url","path"}` atomically with mode 0600. */
  async write(url: string): Promise<void> {
    const content = JSON.stringify({
      url: validateIdentityUrl(url, this.options),
      path: this.paths.credentialsPathForParams,
    });
    await writeFileAtomic(this.paths.params, content);
  }
}
