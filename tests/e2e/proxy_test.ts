/**
 * Dialling through an HTTP proxy — a real one (tinyproxy): the identity request and the MQTT link (an HTTP CONNECT
 * tunnel, TLS and the broker's names verified inside it) go through it, credentials work and never reach a log
 * line, NO_PROXY is honoured, snapd's own proxy settings are used when nothing else names one, and a proxy that
 * refuses or asks for credentials is reported in one line naming the proxy and the target.
 */
import { bypasses, environmentSource, proxyFor, resolveProxies, showProxy } from "../../lib/net/proxy.ts";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { runAgent } from "../support/agent_process.ts";
import { uploadStream } from "../../lib/uploads.ts";
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { NatsServer } from "../support/nats_server.ts";
import { freePort } from "../support/ports.ts";
import { HttpProxy } from "../support/http_proxy.ts";
import { TestCA } from "../support/pki.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";

Deno.test("proxy sources: the settings, then the environment, then snapd's system settings — each kind on its own", () => {
  const proxies = resolveProxies([
    { name: "settings", https: "http://settings-proxy:3128" },
    environmentSource({ HTTPS_PROXY: "http://env-proxy:3128", http_proxy: "env-http:8080", NO_PROXY: "" }),
    {
      name: "snapd's system settings",
      http: "http://snapd-proxy:3128",
      noProxy: "localhost,.corp.example,10.0.0.5",
    },
  ]);
  assertEquals([proxies.https?.host, proxies.origin.https], ["settings-proxy:3128", "settings"]);
  assertEquals([proxies.http?.host, proxies.origin.http], ["env-http:8080", "the environment"]);
  assertEquals(
    proxies.noProxy,
    ["localhost", ".corp.example", "10.0.0.5"],
    "NO_PROXY empty: the next source",
  );
  assertOk(bypasses(proxies, "localhost", 8883) && bypasses(proxies, "mqtt.corp.example", 8883));
  assertOk(bypasses(proxies, "corp.example", 443) && bypasses(proxies, "10.0.0.5", 1));
  assertOk(!bypasses(proxies, "example.com", 443) && !bypasses(proxies, "notcorp.example", 443));
  assertEquals(
    proxyFor(proxies, { tls: true, host: "mqtt.example.com", port: 8883 })?.host,
    "settings-proxy:3128",
  );
  assertEquals(proxyFor(proxies, { tls: false, host: "id.example.com", port: 80 })?.host, "env-http:8080");
  assertEquals(showProxy(new URL("http://alice:s3cret@proxy:3128")), "http://***@proxy:3128");
  assertOk(bypasses(resolveProxies([{ name: "x", noProxy: "*" }]), "anything", 1));
});

Deno.test({
  name: "an upload to https://<IP address> through the https proxy: TLS in the tunnel verifies that address",
  ...E2E,
  async fn() {
    const proxy = await HttpProxy.start({});
    const ca = TestCA.create();
    const stranger = TestCA.create("another CA");
    const issued = ca.issue("upload server", { ips: ["127.0.0.1"] });
    const received: string[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: issued.certPem, key: issued.keyPem, onListen() {} },
      async (request) => {
        received.push(await request.text());
        return new Response("stored");
      },
    );
    try {
      const url = new URL(`https://127.0.0.1:${server.addr.port}/snapshots/device-1.zip`);
      const proxies = resolveProxies([{ name: "settings", https: proxy.url() }]);
      const upload = (trust: TestCA) =>
        uploadStream(url, new Blob(["snapshot"]).stream(), 8, { proxies, ca: trust.certPem });
      await upload(ca);
      assertEquals(received, ["snapshot"]);
      assertEquals(await proxy.requests(), [`CONNECT 127.0.0.1:${server.addr.port}`]);
      // still verified: a certificate of another CA for the same address is refused
      const refused = await upload(stranger).then(() => "uploaded", (error: Error) => error.message);
      assertMatch(refused, /^upload to 127\.0\.0\.1:\d+ failed: .*(certificate|issuer)/i);
      assertEquals(received.length, 1);
    } finally {
      await server.shutdown();
      await proxy.stop();
    }
  },
});

Deno.test({
  name:
    "through a real proxy with credentials: enrollment and the MQTT link via CONNECT, the password never logged",
  ...E2E,
  async fn() {
    const proxy = await HttpProxy.start({ credentials: { user: "alice", password: "pr0xy-s3cret" } });
    try {
      await withWorld(async (world) => {
        const agent = world.agent([], {
          IOTAGENT_PROXY_HTTP: proxy.url(),
          IOTAGENT_PROXY_HTTPS: proxy.url(),
        });
        const id = await world.online({ timeoutMs: 30_000 });
        assertEquals((await world.dms.request(id, { action: "device" })).success, true);
        const requests = await proxy.requests();
        assertOk(
          requests.includes(`CONNECT localhost:${world.broker.port}`),
          `the broker tunnelled: ${requests}`,
        );
        assertOk(
          requests.includes(`POST ${world.identity.url}/v1/device/enroll`),
          `enrolled through it: ${requests}`,
        );
        assertMatch(
          agent.lines.join("\n"),
          /dialling through proxies https="http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(settings\)"/,
        );
        assertEquals(
          agent.lines.some((line) => line.includes("pr0xy-s3cret")),
          false,
          "the password is never logged",
        );
      });
    } finally {
      await proxy.stop();
    }
  },
});

Deno.test({
  name: "NO_PROXY is honoured; snapd's own proxy setting is used when nothing else names one",
  ...E2E,
  async fn() {
    const proxy = await HttpProxy.start();
    try {
      await withWorld(async (world) => {
        world.agent([], { HTTPS_PROXY: proxy.url(), NO_PROXY: "localhost" });
        const id = await world.online({ timeoutMs: 30_000 });
        assertEquals((await world.dms.request(id, { action: "device" })).success, true);
        assertEquals(await proxy.requests(), [], "direct: localhost is in NO_PROXY");
      });
      await withWorld(async (world) => {
        world.snapd.config.set("system", { proxy: { https: proxy.url() } });
        const agent = world.agent();
        await world.online({ timeoutMs: 30_000 });
        assertOk((await proxy.requests()).includes(`CONNECT localhost:${world.broker.port}`));
        assertMatch(
          agent.lines.join("\n"),
          /dialling through proxies https="http:\/\/127\.0\.0\.1:\d+ \(snapd's system settings\)"/,
        );
      });
    } finally {
      await proxy.stop();
    }
  },
});

Deno.test({
  name: "a proxy that refuses CONNECT, or asks for credentials, is one line naming the proxy and the target",
  ...E2E,
  async fn() {
    const refusing = await HttpProxy.start({ connectPorts: [443] });
    const guarded = await HttpProxy.start({ credentials: { user: "bob", password: "hidden-pass" } });
    try {
      for (
        const [proxy, pattern] of [
          [
            refusing.url(),
            /connecting to broker localhost:\d+ failed: proxy http:\/\/127\.0\.0\.1:\d+ refused CONNECT to localhost:\d+: 403/,
          ],
          [
            guarded.url(false),
            /connecting to broker localhost:\d+ failed: proxy http:\/\/127\.0\.0\.1:\d+ asks for credentials to reach localhost:\d+ \(407/,
          ],
        ] as const
      ) {
        await withWorld(async (world) => {
          const agent = world.agent([], {
            IOTAGENT_PROXY_HTTPS: proxy,
            IOTAGENT_PROXY_NO_PROXY: "none.invalid",
          });
          const line = await agent.waitForLine(/connecting to broker .* failed: /, { timeoutMs: 30_000 });
          assertMatch(line, pattern);
          await until(() => agent.matching(/connecting to broker .* failed again/).length > 0, "retried");
          assertEquals(agent.matching(/connected to broker/).length, 0);
        });
      }
    } finally {
      await refusing.stop();
      await guarded.stop();
    }
  },
});

Deno.test({
  name:
    "agent doctor checks the proxy and goes through it to the identity service and the broker, as the agent does",
  ...E2E,
  async fn() {
    const proxy = await HttpProxy.start({ credentials: { user: "carol", password: "d0ctor-pass" } });
    try {
      await withWorld(async (world) => {
        const agent = world.agent();
        await world.online({ timeoutMs: 30_000 });
        await agent.stop();
        const doctor = (proxyUrl: string) =>
          runAgent(["doctor"], {
            ...world.env,
            IOTAGENT_PROXY_HTTP: proxyUrl,
            IOTAGENT_PROXY_HTTPS: proxyUrl,
          });

        const through = await doctor(proxy.url());
        assertEquals(through.code, 0, through.output);
        assertMatch(
          through.output,
          /^\[ ok \] proxy: http:\/\/\*\*\*@127\.0\.0\.1:\d+ for https \(settings\), http \(settings\) accepts connections$/m,
        );
        assertMatch(
          through.output,
          /^\[ ok \] broker: TLS handshake with localhost:\d+ through proxy http:\/\/\*\*\*@/m,
        );
        const requests = await proxy.requests();
        assertOk(
          requests.includes(`CONNECT localhost:${world.broker.port}`),
          `the broker tunnelled: ${requests}`,
        );
        assertOk(
          requests.includes(`POST ${world.identity.url}/v1/device/enroll`),
          `the probe went through: ${requests}`,
        );
        assertEquals(through.output.includes("d0ctor-pass"), false, "the password is never shown");

        const noCredentials = await doctor(proxy.url(false));
        assertEquals(noCredentials.code, 1, noCredentials.output);
        assertMatch(
          noCredentials.output,
          /^\[FAIL\] broker: proxy http:\/\/127\.0\.0\.1:\d+ asks for credentials/m,
        );

        const closed = `http://127.0.0.1:${freePort()}`;
        const nobody = await doctor(closed);
        assertEquals(nobody.code, 1, nobody.output);
        assertMatch(
          nobody.output,
          new RegExp(`^\\[FAIL\\] proxy: ${closed} for https .*: cannot connect: `, "m"),
        );
      });
    } finally {
      await proxy.stop();
    }
  },
});

Deno.test("an upload to an http URL goes through the http proxy, with its credentials, whole", async () => {
  const proxy = await HttpProxy.start({ credentials: { user: "dave", password: "upl0ad-pass" } });
  const received: { path: string; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    received.push({ path: new URL(request.url).pathname, body: await request.text() });
    return new Response("stored");
  });
  try {
    const url = new URL(`http://127.0.0.1:${server.addr.port}/logs/device-1.tar`);
    const payload = "log line\n".repeat(10_000);
    const proxies = resolveProxies([{ name: "settings", http: proxy.url() }]);
    await uploadStream(url, new Blob([payload]).stream(), payload.length, { proxies });
    assertEquals(received, [{ path: "/logs/device-1.tar", body: payload }]);
    assertEquals(await proxy.requests(), [`PUT ${url.href}`]);
  } finally {
    await server.shutdown();
    await proxy.stop();
  }
});

Deno.test({
  name: "a remote NATS server is reached through the https proxy; the device's own (localhost) never is",
  ...E2E,
  async fn() {
    const proxy = await HttpProxy.start();
    const users = [
      { user: "snapd", password: DEFAULT_NATS_PASSWORD },
      { user: "reader", password: "reader-pass" },
    ];
    const remote = await NatsServer.start({ users, host: "127.0.0.2" });
    const local = await NatsServer.start({ users });
    try {
      for (const [server, tunnelled] of [[remote, true], [local, false]] as const) {
        await withWorld(async (world) => {
          const agent = world.agent([], {
            IOTAGENT_NATS_ENABLED: "true",
            IOTAGENT_NATS_URL: server.url.replace("127.0.0.1", "localhost"),
            IOTAGENT_PROXY_HTTPS: proxy.url(),
          });
          await world.online({ timeoutMs: 30_000 });
          await agent.waitForLine(/connected to NATS .*; serving/, { timeoutMs: 30_000 });
          const client = await connectNats({ servers: server.url, user: "reader", pass: "reader-pass" });
          try {
            const reply = await client.request("v1.iot.agent.status", new TextEncoder().encode("{}"), {
              timeout: 5000,
            });
            assertOk(reply.data.length > 0, "the local API answers");
          } finally {
            await client.close();
          }
          const requests = await proxy.requests();
          assertEquals(
            requests.some((r) => r.startsWith("CONNECT") && r.endsWith(`:${server.port}`)),
            tunnelled,
            `${server.url}: ${requests.join(", ")}`,
          );
        });
      }
    } finally {
      await Promise.all([remote.stop(), local.stop(), proxy.stop()]);
    }
  },
});
