/**
 * `deno task test [-- <deno test arguments>]`: the whole test suite as a user and CI run it.
 *
 * 1. The Debian packages the tests need (tests/support/prerequisites.ts): installed when run as root, otherwise
 *    named in one line (exit 1).
 * 2. `deno test --allow-all tests/` (or the arguments given), with every line the processes print and every secret
 *    the tests make kept in a private directory (0700).
 * 3. The secrets scan over that directory, a step of its own: no secret may appear in any line.
 *
 * Exit code: the tests' own, or 1 when the scan found a secret or a prerequisite is missing.
 */
import { ensurePrerequisites } from "../support/prerequisites.ts";
import { record } from "../support/reliability.ts";
import { scanRun } from "../support/secrets_scan.ts";

const complaint = await ensurePrerequisites();
if (complaint) {
  console.error(complaint);
  Deno.exit(1);
}

const logDir = await Deno.makeTempDir({ prefix: "iot-agent-test-logs-" });
await Deno.chmod(logDir, 0o700);
let code: number;
try {
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const tests = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--unstable-net", ...args],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { IOTAGENT_TEST_LOG_DIR: logDir },
  }).spawn().status;
  code = tests.code;

  const scan = await scanRun(logDir);
  await record({
    area: "secrets",
    fault: `every line printed by the test run (${scan.lines} lines), searched for ${scan.secrets} secrets`,
    tries: 1,
    lost: scan.hits.length,
    repeatedEffects: 0,
    repeatedReplies: 0,
    recovered: scan.hits.length === 0 ? 1 : 0,
    note:
      "private keys (PEM and base64), organisation keys from the identity service, NATS passwords; lost = hits",
  });
  if (scan.hits.length > 0) {
    console.error(`secrets scan: ${scan.hits.length} line(s) hold a secret:\n${scan.hits.join("\n")}`);
    code ||= 1;
  } else {
    console.error(`secrets scan: ${scan.lines} lines searched for ${scan.secrets} secrets: none found`);
  }
} finally {
  await Deno.remove(logDir, { recursive: true });
}
Deno.exit(code);
