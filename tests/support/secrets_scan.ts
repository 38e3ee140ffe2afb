/**
 * The secrets scan: every line any process printed during a test run — the agent, the watchdog, unregister, the
 * brokers — is searched for every secret the tests made: private keys (as PEM and as the base64 the identity
 * service sends them in), the organisation keys the identity service leaks, NATS passwords. `deno task test` runs
 * it as a step of its own once the tests are done, whatever their order.
 */
import { join } from "node:path";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";

/** What the scan found. */
export interface ScanResult {
  lines: number;
  secrets: number;
  /** The start of each line that holds a secret. */
  hits: string[];
}

/** Distinctive pieces of a secret: the middle of a key's base64 body, and of the PEM's own base64 encoding. */
export function needles(secret: string): string[] {
  if (!secret.includes("-----BEGIN")) return [secret];
  const body = secret.split("\n").filter((line) => line && !line.startsWith("-----")).join("");
  const encoded = btoa(secret);
  const middle = (text: string) =>
    text.slice(Math.floor(text.length / 2) - 24, Math.floor(text.length / 2) + 24);
  return [middle(body), middle(encoded)];
}

/** Searches `lines` (the run's output) for every one of `secrets`. */
export function scanText(lines: string, secrets: Iterable<string>): ScanResult {
  const unique = new Set([...secrets, DEFAULT_NATS_PASSWORD]);
  const hits: string[] = [];
  for (const secret of unique) {
    for (const needle of needles(secret)) {
      const at = lines.indexOf(needle);
      if (at < 0) continue;
      const end = lines.indexOf("\n", at);
      hits.push(lines.slice(lines.lastIndexOf("\n", at) + 1, end < 0 ? undefined : end).slice(0, 200));
    }
  }
  return { lines: lines === "" ? 0 : lines.split("\n").length - 1, secrets: unique.size, hits };
}

/** Scans what a run kept in `dir` (see tests/support/test_log.ts). */
export async function scanRun(dir: string): Promise<ScanResult> {
  const read = (name: string) => Deno.readTextFile(join(dir, name)).catch(() => "");
  const secrets = (await read("secrets")).split("\n").filter((line) => line).map((line) =>
    JSON.parse(line) as string
  );
  return scanText(await read("lines"), secrets);
}
