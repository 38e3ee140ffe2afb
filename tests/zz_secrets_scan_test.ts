/**
 * The last test of the run (files run in name order): every line any process printed during `deno test` — the
 * agent, the watchdog, unregister, the brokers — is searched for every secret the tests made: private keys (as PEM
 * and as the base64 the identity service sends them in), the organisation keys the identity service leaks, NATS
 * passwords. None may appear. Run alone (a filter), it has nothing to scan and says so.
 */
import { join } from "node:path";
import { DEFAULT_NATS_PASSWORD } from "../lib/settings.ts";
import { assertEquals } from "./support/assert.ts";
import { record } from "./support/reliability.ts";
import { TEST_LOG_DIR } from "./support/test_log.ts";

/** Distinctive pieces of a secret: the middle of a key's base64 body, and of the PEM's own base64 encoding. */
function needles(secret: string): string[] {
  if (!secret.includes("-----BEGIN")) return [secret];
  const body = secret.split("\n").filter((line) => line && !line.startsWith("-----")).join("");
  const encoded = btoa(secret);
  const middle = (text: string) =>
    text.slice(Math.floor(text.length / 2) - 24, Math.floor(text.length / 2) + 24);
  return [middle(body), middle(encoded)];
}

Deno.test("no secret the tests made appears in any line a process printed", async () => {
  const lines = await Deno.readTextFile(join(TEST_LOG_DIR, "lines")).catch(() => undefined);
  if (lines === undefined) {
    console.error("secrets scan: no process output recorded in this run (run the whole suite)");
    return;
  }
  const secrets = (await Deno.readTextFile(join(TEST_LOG_DIR, "secrets")).catch(() => ""))
    .split("\n").filter((l) => l).map((l) => JSON.parse(l) as string);
  secrets.push(DEFAULT_NATS_PASSWORD);
  const hits: string[] = [];
  for (const secret of new Set(secrets)) {
    for (const needle of needles(secret)) {
      const at = lines.indexOf(needle);
      if (at >= 0) {
        hits.push(lines.slice(lines.lastIndexOf("\n", at) + 1, lines.indexOf("\n", at)).slice(0, 200));
      }
    }
  }
  const lineCount = lines.split("\n").length;
  await record({
    area: "secrets",
    fault: `every line printed by the test run (${lineCount} lines), searched for ${
      new Set(secrets).size
    } secrets`,
    tries: 1,
    lost: hits.length,
    repeatedEffects: 0,
    repeatedReplies: 0,
    recovered: hits.length === 0 ? 1 : 0,
    note:
      "private keys (PEM and base64), organisation keys from the identity service, NATS passwords; lost = hits",
  });
  await Deno.remove(TEST_LOG_DIR, { recursive: true }).catch(() => {});
  // runs that stopped before this test (a filter, a failure) left theirs: those processes are gone
  const parent = join(TEST_LOG_DIR, "..");
  for await (const entry of Deno.readDir(parent)) {
    const pid = /^iot-agent-test-logs-(\d+)$/.exec(entry.name)?.[1];
    if (pid && !(await Deno.stat(`/proc/${pid}`).then(() => true, () => false))) {
      await Deno.remove(join(parent, entry.name), { recursive: true }).catch(() => {});
    }
  }
  assertEquals(hits, [], "secrets in log lines");
});
