/** The agent's version, from deno.json (embedded by `deno compile`). */
import manifest from "../deno.json" with { type: "json" };

/** e.g. `0.1.0`. */
export const VERSION: string = manifest.version;
