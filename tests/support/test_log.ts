/**
 * Everything a test run printed, and every secret it made, kept on disk for the secrets scan that `deno task test`
 * runs after the tests (tests/support/secrets_scan.ts). The runner makes the directory (0700) and names it in
 * `IOTAGENT_TEST_LOG_DIR`; without it (a test file run on its own, the demo) nothing is kept.
 */
import { join } from "node:path";

/** The run's directory, when a run keeps one. */
export const TEST_LOG_DIR: string | undefined = Deno.env.get("IOTAGENT_TEST_LOG_DIR") || undefined;

const encoder = new TextEncoder();

function append(name: string, text: string): void {
  if (!TEST_LOG_DIR) return;
  Deno.writeFileSync(join(TEST_LOG_DIR, name), encoder.encode(text), { append: true, mode: 0o600 });
}

/** Keeps one output line of a process the tests ran. */
export function recordLine(line: string): void {
  append("lines", line + "\n");
}

/** Keeps a secret the tests made (a private key, a password) to look for later. */
export function recordSecret(secret: string): void {
  append("secrets", JSON.stringify(secret) + "\n");
}
