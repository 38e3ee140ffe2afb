/** The secrets scan finds a secret in any form it takes in a line, and nothing where there is none. */
import { assertEquals } from "../../support/assert.ts";
import { scanText } from "../../support/secrets_scan.ts";
import { TestCA } from "../../support/pki.ts";

Deno.test("the secrets scan finds a key as PEM or as base64, and a password; a clean run has no hits", () => {
  const key = TestCA.create().issue("device").keyPem;
  const body = key.split("\n").filter((line) => line && !line.startsWith("-----")).join("");
  const clean = "INFO agent: enrolled\nINFO agent: connected\n";
  assertEquals(scanText(clean, [key, "hunter2-secret"]).hits, []);
  assertEquals(scanText(clean + `DEBUG enrollment body ${body}\n`, [key]).hits.length, 1);
  assertEquals(scanText(clean + `DEBUG raw ${btoa(key)}\n`, [key]).hits.length, 1);
  assertEquals(scanText(clean + `WARN NATS pass=hunter2-secret\n`, ["hunter2-secret"]).hits, [
    "WARN NATS pass=hunter2-secret",
  ]);
  assertEquals(scanText("x accept solve carbon atmosphere\n", []).hits.length, 1, "the default password too");
});
