/**
 * `params`: `{"url":"<identity service URL>","path":"<credentials path>"}` (this key order, compact, 0600), as
 * the Go agent and its `configure` command wrote it. A device without `params` (or with an empty `url`) is not
 * configured yet: the agent waits for an operator to set the URL.
 */
import { type AgentPaths } from "../paths.ts";
import { moveAside, readTextIfExists, removeIfExists, writeFileAtomic } from "../files.ts";
import type { Logger } from "../log.ts";

/** The identity service settings. */
export interface Params {
  /** Base URL of the IoT Identity service. */
  url: string;
  /** Where the Go agent kept the credentials; informational (we use `$SNAP_DATA/.secret`). */
  path: string;
}

/**
 * Checks an identity service URL: http or https, with a host.
 * @throws {TypeError} saying what is wrong.
 */
export function validateIdentityUrl(url: string): string {
  const parsed = URL.parse(url.trim());
  if (!parsed || !["http:", "https:"].includes(parsed.protocol) || parsed.hostname === "") {
    throw new TypeError(`invalid identity service URL "${url}": expected http(s)://host[:port][/path]`);
  }
  return url.trim();
}

/** Reads and writes `params`. */
export class ParamsFile {
  constructor(
    private readonly paths: Pick<AgentPaths, "params" | "credentialsPathForParams">,
    private readonly log: Logger,
  ) {}

  /** The file's path. */
  get path(): string {
    return this.paths.params;
  }

  /**
   * The current settings, or `undefined` when not configured. A corrupt file is moved aside (reported) so the
   * next `configure` starts clean.
   */
  async read(): Promise<Params | undefined> {
    const text = await readTextIfExists(this.paths.params);
    if (text === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new TypeError("not an object");
      }
    } catch (error) {
      const aside = await moveAside(this.paths.params);
      this.log.error(`${this.paths.params} is corrupt (${(error as Error).message}); moved to ${aside}`);
      return undefined;
    }
    const { url, path } = parsed as { url?: unknown; path?: unknown };
    if (typeof url !== "string" || url.trim() === "") return undefined;
    return {
      url: url.trim(),
      path: typeof path === "string" && path !== "" ? path : this.paths.credentialsPathForParams,
    };
  }

  /** Removes `params` (unregister); returns whether it existed. */
  async remove(): Promise<boolean> {
    return await removeIfExists(this.paths.params);
  }

  /** Writes `{"url","path"}` atomically with mode 0600. */
  async write(url: string): Promise<void> {
    const content = JSON.stringify({
      url: validateIdentityUrl(url),
      path: this.paths.credentialsPathForParams,
    });
    await writeFileAtomic(this.paths.params, content);
  }
}
