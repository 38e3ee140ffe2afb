/**
 * No enrollment in clear text, from the attacker's side: an `http://` identity URL outside loopback is refused at
 * every entry (`configure --url`, a `params` file the Go agent wrote; the hook is in snap_test.ts), so a man in
 * the middle on plain HTTP learns nothing; and when the operator takes the risk
 * (`identity.allow-insecure-http=true`), the root certificate that crossed the wire is still not trusted alone.
 */
import { join } from "node:path";
import { assertEquals, assertIncludes, assertMatch, assertOk } from "../support/assert.ts";
import { runAgent } from "../support/agent_process.ts";
import { ClearTextRelay } from "../support/clear_text_relay.ts";
import { E2E, withWorld } from "../support/world.ts";

/** A name that resolves nowhere: only the relay (an HTTP proxy gets the host name) can reach "it". */
const FAR_HOST = "identity.mitm.test";

Deno.test("configure --url: http:// outside loopback is refused in one line unless the risk setting says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "iot-agent-clear-text-" });
  try {
    const env = { SNAP_DATA: dir, SNAP_COMMON: dir, NO_COLOR: "1" };
    const refused = await runAgent(["configure", "--url", "http://identity.example.com:8030"], env);
    assertEquals(refused.code, 78, refused.output);
    assertMatch(
      refused.output.trim(),
      /^agent: invalid identity service URL "http:\/\/identity\.example\.com:8030": plain http outside loopback .*identity\.allow-insecure-http=true \(insecure\); expected https:\/\/host\[:port\]\[\/path\]$/,
    );
    assertEquals(await Deno.stat(join(dir, "params")).then(() => true, () => false), false, "no params");
    for (
      const url of [
        "http://127.0.0.2:8030",
        "http://localhost:8030/id",
        "http://[::1]:8030",
        "https://x.test",
      ]
    ) {
      const accepted = await runAgent(["configure", "--url", url], env);
      assertEquals(accepted.code, 0, `${url}: ${accepted.output}`);
    }
    const risk = await runAgent(["configure", "--url", "http://identity.example.com"], {
      ...env,
      IOTAGENT_IDENTITY_ALLOW_INSECURE_HTTP: "true",
    });
    assertEquals(risk.code, 0, risk.output);
    assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "params"))).url, "http://identity.example.com");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a man in the middle on plain http: with the default settings the params URL is refused and no request reaches it",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const relay = ClearTextRelay.start(world.identity.url);
      try {
        const url = `http://${FAR_HOST}:${new URL(world.identity.url).port}`;
        await world.configure(url); // as the Go agent's configure wrote it: no check on the way in
        const agent = world.agent([], { IOTAGENT_PROXY_HTTP: relay.url });
        await agent.waitForLine(/params: invalid identity service URL .*plain http outside loopback/, {
          timeoutMs: 20_000,
        });
        await agent.waitForLine(/not configured: waiting for the identity service URL/, { timeoutMs: 5_000 });
        // a few of the enroller's polls (2 s) and backoffs (0.5 s): long enough for a request to have gone out
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        assertEquals(relay.seen, [], "the man in the middle saw nothing");
        assertEquals(world.identity.requests.length, 0);
      } finally {
        await relay.stop();
      }
    }, { configure: false });
  },
});

Deno.test({
  name:
    "with identity.allow-insecure-http the root certificate that came over plain http is not trusted alone",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const relay = ClearTextRelay.start(world.identity.url);
      try {
        await world.configure(`http://${FAR_HOST}:${new URL(world.identity.url).port}`);
        const agent = world.agent([], {
          IOTAGENT_PROXY_HTTP: relay.url,
          IOTAGENT_PROXY_NO_PROXY: "localhost", // the broker is dialled directly
          IOTAGENT_IDENTITY_ALLOW_INSECURE_HTTP: "true",
        });
        await agent.waitForLine(/enrolled as device/, { timeoutMs: 30_000 });
        // what the setting risks: the key and the root crossed the relay in clear
        assertOk(relay.seen.length === 1, `one enrollment through the relay: ${relay.seen.length}`);
        assertIncludes(relay.seen[0].request, `POST http://${FAR_HOST}:`);
        assertIncludes(relay.seen[0].answer, '"privateKey"');
        assertIncludes(relay.seen[0].answer, '"rootcert"');
        // the broker's certificate is signed by exactly that root: without mqtt.ca nothing vouches for it
        const refusal = await agent.waitForLine(/certificate of broker .* does not trust/, {
          timeoutMs: 30_000,
        });
        assertMatch(
          refusal,
          /not the organisation root certificate \(it came over plain http from http:\/\//,
        );
        assertMatch(refusal, /set mqtt\.ca to the PEM bundle/);
        assertEquals(agent.matching(/connected to broker/), [], "never trusted the broker");
      } finally {
        await relay.stop();
      }
    }, { configure: false, trustBroker: false });
  },
});
