/**
 * Canonical JSON: compact, object keys sorted by code unit (Go's `encoding/json` order for maps), numbers kept
 * as their literal text when parsed with {@link parseJsonKeepingNumbers} (snapd's client decodes config with
 * `UseNumber`, so `12345678901234567890` must not turn into `12345678901234567000`).
 */

interface RawJsonApi {
  rawJSON(text: string): unknown;
}
interface ReviverContext {
  source?: string;
}

/** Parses JSON, keeping every number as its literal source text (it stringifies back unchanged). */
export function parseJsonKeepingNumbers(text: string): unknown {
  const api = JSON as unknown as RawJsonApi;
  return JSON.parse(
    text,
    function (this: unknown, _key: string, value: unknown, context?: ReviverContext) {
      if (typeof value === "number" && context?.source !== undefined) return api.rawJSON(context.source);
      return value;
    } as (key: string, value: unknown) => unknown,
  );
}

/** Serializes `value` compactly with object keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object" || isRawJson(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  }
  return sorted;
}

function isRawJson(value: object): boolean {
  const api = JSON as unknown as { isRawJSON?: (v: unknown) => boolean };
  return api.isRawJSON?.(value) ?? false;
}

/** SHA-256 of a string's UTF-8 bytes, as lowercase hex. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
