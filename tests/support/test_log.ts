/**
 * Everything the test run logged, and every secret it made, kept on disk for the last test of the run
 * (tests/zz_secrets_scan_test.ts), which checks that no secret reached a log line. One directory per `deno test`
 * process.
 */
import { join } from "node:path";

/** The run's directory. */
export const TEST_LOG_DIR = join(Deno.env.get("TMPDIR") ?? "/tmp", `iot-agent-test-logs-${Deno.pid}`);

let ready = false;
function ensure(): void {
  if (ready) return;
  Deno.mkdirSync(TEST_LOG_DIR, { recursive: true });
  ready = true;
}

const encoder = new TextEncoder();

/** Keeps one output line of a process the tests ran. */
export function recordLine(line: string): void {
  ensure();
  Deno.writeFileSync(join(TEST_LOG_DIR, "lines"), encoder.encode(line + "\n"), { append: true });
}

/** Keeps a secret the tests made (a private key, a password) to look for later. */
export function recordSecret(secret: string): void {
  ensure();
  Deno.writeFileSync(join(TEST_LOG_DIR, "secrets"), encoder.encode(JSON.stringify(secret) + "\n"), {
    append: true,
  });
}
