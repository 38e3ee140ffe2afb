/**
 * The local NATS API end to end: the real agent process, a real nats-server configured like the companion snap
 * (`snap/nats-server.conf`), every subject's success and error replies validated against `asyncapi.yaml`.
 */
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { parse } from "yaml";
import type { NatsConnection } from "nats";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { SUBJECTS } from "../../lib/nats/api.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { NatsServer } from "../support/nats_server.ts";
import { assertionFixture } from "../support/fixtures.ts";
import { freePort } from "../support/ports.ts";
import { sleep } from "../support/wait.ts";
import type { Child } from "../support/child.ts";
import { E2E, withWorld, type World } from "../support/world.ts";

const root = new URL("../../", import.meta.url);
const contract = parse(await Deno.readTextFile(new URL("asyncapi.yaml", root))) as {
  asyncapi: string;
  channels: Record<string, { publish: { "x-reply": { payload: unknown }; message: { payload: unknown } } }>;
  components: { schemas: Record<string, unknown> };
};
const serverConfig = await Deno.readTextFile(new URL("snap/nats-server.conf", root));

const ajv = new (Ajv as unknown as typeof Ajv.default)({ strict: false, allErrors: true });
(addFormats as unknown as typeof addFormats.default)(ajv);
ajv.addSchema({ components: contract.components }, "asyncapi");

/** The contract's channel of a concrete subject (`v1.snapd.v2.snaps.peer-svc.post` -> `…{snap}…`). */
function channelOf(subject: string): string {
  const channel = Object.keys(contract.channels).find((name) =>
    new RegExp(`^${name.replace(/\./g, "\\.").replace(/\{[^}]+\}/g, "[^.]+")}$`).test(subject)
  );
  if (!channel) throw new Error(`${subject} is not in asyncapi.yaml`);
  return channel;
}

function assertReplyMatchesContract(subject: string, reply: unknown) {
  const schema = JSON.parse(
    JSON.stringify(contract.channels[channelOf(subject)].publish["x-reply"].payload)
      .replaceAll('"#/components', '"asyncapi#/components'),
  );
  const validate = ajv.compile(schema);
  assertOk(
    validate(reply),
    `${subject} reply ${JSON.stringify(reply).slice(0, 300)}: ${ajv.errorsText(validate.errors)}`,
  );
}

/** How long after the first reply a second one would have shown up (the Go agent answered every request twice). */
const SECOND_REPLY_WINDOW_MS = 250;

/**
 * Sends a request and collects every reply on its inbox — not `request()`, which keeps the first — then asserts
 * there was exactly one and that it matches the contract.
 */
async function request(
  client: NatsConnection,
  subject: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const payload = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
  const inbox = `_INBOX.test.${crypto.randomUUID()}`;
  const replies: Uint8Array[] = [];
  const subscription = client.subscribe(inbox);
  const collected = (async () => {
    for await (const message of subscription) replies.push(message.data);
  })();
  try {
    await client.flush();
    client.publish(subject, payload, { reply: inbox });
    const deadline = Date.now() + 5000;
    while (replies.length === 0 && Date.now() < deadline) await sleep(10);
    if (replies.length === 0) throw new Error(`no reply on ${subject} within 5 s`);
    await sleep(SECOND_REPLY_WINDOW_MS);
  } finally {
    subscription.unsubscribe();
    await collected;
  }
  // nats-server answers "no responders" (an empty message) while nobody serves the subject
  if (replies[0].length === 0) throw new Error(`no responders on ${subject}`);
  assertEquals(replies.length, 1, `exactly one reply on ${subject}`);
  const reply = JSON.parse(new TextDecoder().decode(replies[0]));
  assertReplyMatchesContract(subject, reply);
  return reply;
}

/** A private password, as an operator sets it on the NATS server and the agent: the API's writes are open. */
const PRIVATE_PASSWORD = "a private test password 4e1f";

/** The example configuration with the password the agent is given. */
const configWith = (password: string) =>
  serverConfig.replace(`"${DEFAULT_NATS_PASSWORD}"`, JSON.stringify(password));

/**
 * Runs the agent with the local API against a nats-server started from the example configuration, both given
 * `password` (a private one unless said).
 */
async function withApi(
  fn: (world: World, server: NatsServer, client: NatsConnection, agent: Child) => Promise<void>,
  password = PRIVATE_PASSWORD,
) {
  await withWorld(async (world) => {
    const server = await NatsServer.fromConfig(configWith(password));
    const client = await connectNats({ servers: server.url, user: "snapd", pass: password });
    try {
      const agent = world.agent([], {
        IOTAGENT_NATS_ENABLED: "true",
        IOTAGENT_NATS_URL: server.url,
        IOTAGENT_NATS_SNAPD_PASSWORD: password,
      });
      await agent.waitForLine(/connected to NATS .*; serving/);
      await fn(world, server, client, agent);
    } finally {
      await client.close();
      await server.stop();
    }
  });
}

Deno.test("asyncapi.yaml documents exactly the subjects the agent serves", () => {
  assertEquals(contract.asyncapi, "2.6.0");
  const served = SUBJECTS.map((s) => s.subject).sort();
  const documented = Object.keys(contract.channels).map((c) => c.replace(/\{[^}]+\}/g, "*")).sort();
  assertEquals(documented, served);
  for (const [name, channel] of Object.entries(contract.channels)) {
    assertOk(channel.publish.message.payload, `${name} has a request schema`);
    assertOk(channel.publish["x-reply"].payload, `${name} has a reply schema`);
  }
});

Deno.test({
  name: "every subject answers, success and error, with replies that match the contract",
  ...E2E,
  async fn() {
    await withApi(async (world, _server, client) => {
      const deviceId = await world.online();
      for (const prefix of ["v1.", ""]) {
        const model = await request(client, `${prefix}snapd.v2.assertions.get`, { type: "model" });
        assertEquals(model.stream, `${assertionFixture("model.assert")}\n`);
        const serial = await request(client, `${prefix}snapd.v2.assertions.get`, { type: "serial" });
        assertMatch(serial.stream as string, /^type: serial\n[\s\S]*serial: PEER0001\n/);
        assertEquals(await request(client, `${prefix}snapd.v2.assertions.get`, { type: "account" }), {
          error: '"type" must be "model" or "serial"',
        });
        const snaps = (await request(client, `${prefix}snapd.v2.snaps.get`, {})).snaps as Record<
          string,
          unknown
        >[];
        assertEquals(snaps.map((s) => `${s.name}@${s.revision}`), [
          "snapd@x1",
          "peer-bbbase@x1",
          "peer-svc@x1",
        ]);
        const active = prefix === ""; // restarted by the first round
        assertEquals(snaps[2].apps, [{ active, daemon: "simple", enabled: true, name: "daemon" }, {
          active: false,
          daemon: "",
          enabled: false,
          name: "hello",
        }]);
        assertOk(!("apps" in snaps[0]), "no apps key for a snap without apps");
        const started = await request(client, `${prefix}snapd.v2.apps.post`, {
          action: "restart",
          names: ["peer-svc.daemon"],
        });
        assertMatch(started.changeId as string, /^\d+$/);
        const refused = await request(client, `${prefix}snapd.v2.apps.post`, {
          action: "kill",
          names: ["peer-svc"],
        });
        assertEquals(refused.error, '"action" must be "start", "stop" or "restart"');
      }
      assertEquals(world.snapd.requestsTo("POST", "/v2/apps").map((r) => JSON.parse(r.body)), [
        { action: "restart", names: ["peer-svc.daemon"] },
        { action: "restart", names: ["peer-svc.daemon"] },
      ]);
      assertEquals(
        (await request(client, "snapd.v2.apps.post", { action: "start", names: [] })).changeId,
        "",
      );

      const switched = await request(client, "v1.snapd.v2.snaps.peer-svc.post", {
        action: "switch",
        channel: "latest/edge",
      });
      assertMatch(switched.changeId as string, /^\d+$/);
      assertEquals(JSON.parse(world.snapd.requestsTo("POST", "/v2/snaps/peer-svc")[0].body), {
        action: "switch",
        channel: "latest/edge",
      });
      assertEquals(await request(client, "v1.snapd.v2.snaps.peer-svc.post", { action: "remove" }), {
        changeId: "-1",
        error: 'invalid action "remove": only "switch" is supported',
      });
      assertEquals(
        (await request(client, "v1.snapd.v2.snaps.nosuch.post", { action: "switch", channel: "stable" }))
          .error,
        'snap "nosuch" is not installed', // snapd's own text [fixture 105]
      );

      const changes = (await request(client, "v1.snapd.v2.changes.get", { select: "all" })).changes as {
        kind: string;
      }[];
      assertOk(changes.some((c) => c.kind === "switch-snap"));
      assertEquals(
        (await request(client, "v1.snapd.v2.changes.get", { select: "all", for: "peer-bbbase" })).changes,
        [],
      );
      assertMatch(
        (await request(client, "v1.snapd.v2.changes.get", { select: "bogus" })).error as string,
        /"select" must be/,
      );

      assertEquals(await request(client, "iot.agent.mqtt.connection.status", {}), { connected: true });
      const status = await request(client, "v1.iot.agent.status", {});
      assertEquals(status.phase, "serving");
      assertEquals([status.enrolled, status.deviceId, status.organizationId, status.outboxDepth], [
        true,
        deviceId,
        "org-test",
        0,
      ]);
      assertEquals((status.broker as Record<string, unknown>).connected, true);
      assertMatch(status.version as string, /^\d+\.\d+\.\d+/);
      assertOk(status.lastHealthAt, "health was sent");
      const memory = status.memory as Record<string, number>;
      assertOk(
        memory.rss > memory.heapUsed && memory.heapUsed > 0 && memory.heapSizeLimit > memory.heapTotal,
      );

      world.snapd.snaps = [];
      assertEquals(await request(client, "v1.snapd.v2.snaps.get", {}), { snaps: [] });
      world.snapd.failNext({ path: "/v2/snaps" }, { status: 500, message: "snapd is restarting" });
      assertEquals(await request(client, "v1.snapd.v2.snaps.get", {}), { error: "snapd is restarting" });
    });
  },
});

Deno.test({
  name: "empty, malformed and wrong-typed requests get an error reply on every subject",
  ...E2E,
  async fn() {
    await withApi(async (_world, _server, client) => {
      for (const { subject } of SUBJECTS) {
        const concrete = subject.replace("*", "peer-svc");
        for (const body of ["", "{not json", "[1,2]", "42"]) {
          const reply = await request(client, concrete, body);
          const message =
            (reply.error ?? (reply.errorInfo as { message?: string } | undefined)?.message) as string;
          assertMatch(message, /^(empty request|malformed request)/, `${concrete} ${JSON.stringify(body)}`);
        }
      }
      for (
        const [subject, body] of [
          ["v1.snapd.v2.assertions.get", { type: 7 }],
          ["v1.snapd.v2.apps.post", { action: "start", names: "peer-svc" }],
          ["v1.snapd.v2.apps.post", { action: "start", names: ["Bad Name"] }],
          ["v1.snapd.v2.snaps.peer-svc.post", { action: "switch", channel: 3 }],
          ["v1.snapd.v2.snaps.peer-svc.post", { action: "switch", channel: "latest/nope" }],
          ["v1.snapd.v2.changes.get", { for: ["x"] }],
        ] as const
      ) {
        assertOk((await request(client, subject, body)).error, `${subject} ${JSON.stringify(body)}`);
      }
    });
  },
});

Deno.test({
  name: "with the example server configuration only clients with the password can use the API",
  ...E2E,
  async fn() {
    await withApi(async (world, server, authorised) => {
      await world.online();
      assertEquals((await request(authorised, "v1.iot.agent.status", {})).enrolled, true);
      const guest = await connectNats({ servers: server.url });
      try {
        for (const { subject } of SUBJECTS) {
          const concrete = subject.replace("*", "peer-svc");
          const outcome = await guest.request(concrete, new TextEncoder().encode("{}"), { timeout: 1000 })
            .then(
              () => "answered",
              (error: Error) => error.message,
            );
          assertOk(outcome !== "answered", `guest got an answer on ${concrete}`);
        }
      } finally {
        await guest.close();
      }
      const wrong = await connectNats({ servers: server.url, user: "snapd", pass: "guess", reconnect: false })
        .then(
          () => "connected",
          (error: Error) => error.message,
        );
      assertMatch(wrong, /Authorization Violation/);
    });
  },
});

Deno.test({
  name: "after nats-server restarts the agent subscribes again and answers",
  ...E2E,
  async fn() {
    await withApi(async (world, server) => {
      await world.online();
      await server.restart();
      const client = await connectNats({ servers: server.url, user: "snapd", pass: PRIVATE_PASSWORD });
      try {
        let reply: Record<string, unknown> | undefined;
        for (let i = 0; i < 40 && !reply; i++) {
          reply = await request(client, "iot.agent.mqtt.connection.status", {}).catch(() => undefined);
          if (!reply) await sleep(250);
        }
        assertEquals(reply, { connected: true });
      } finally {
        await client.close();
      }
    });
  },
});

Deno.test({
  name: "started before nats-server exists: MQTT works meanwhile, the API answers once the server appears",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const port = freePort();
      const agent = world.agent([], {
        IOTAGENT_NATS_ENABLED: "true",
        IOTAGENT_NATS_URL: `nats://127.0.0.1:${port}`,
      });
      await world.online(); // enrollment and MQTT did not wait for NATS
      await agent.waitForLine(/WARN .*connecting to NATS .* failed/);
      const server = await NatsServer.fromConfig(serverConfig, port);
      try {
        await agent.waitForLine(/connected to NATS/, { timeoutMs: 20_000 });
        const client = await connectNats({ servers: server.url, user: "snapd", pass: DEFAULT_NATS_PASSWORD });
        assertEquals(await request(client, "iot.agent.mqtt.connection.status", {}), { connected: true });
        await client.close();
      } finally {
        await server.stop();
      }
    });
  },
});

Deno.test({
  name: "a wrong password is logged clearly once, retried, and stops nothing else",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const server = await NatsServer.fromConfig(serverConfig);
      try {
        const agent = world.agent([], {
          IOTAGENT_NATS_ENABLED: "true",
          IOTAGENT_NATS_URL: server.url,
          IOTAGENT_NATS_SNAPD_PASSWORD: "not the password",
        });
        const line = await agent.waitForLine(/WARN .*connecting to NATS .* failed/);
        assertMatch(
          line,
          /Authorization Violation.*the server refused user snapd \(check nats\.snapd\.password\)/,
        );
        await agent.waitForLine(/DEBUG .*connecting to NATS .* failed again/);
        const id = await world.online();
        assertEquals((await world.dms.request(id, { action: "device" })).success, true);
        assertEquals(agent.matching(/WARN .*connecting to NATS .* failed/).length, 1);
        assertEquals(agent.matching(/not the password/).length, 0, "the password is never logged");
      } finally {
        await server.stop();
      }
    });
  },
});

Deno.test({
  name: "before enrollment the status subjects say so; with nats.ca the connection uses TLS",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const tlsDir = await Deno.makeTempDir();
      const identity = world.ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] });
      await Deno.writeTextFile(`${tlsDir}/server.crt`, identity.certPem);
      await Deno.writeTextFile(`${tlsDir}/server.key`, identity.keyPem);
      const tls = `\ntls {\n  cert_file: "${tlsDir}/server.crt"\n  key_file: "${tlsDir}/server.key"\n}\n`;
      const server = await NatsServer.fromConfig(serverConfig + tls);
      const url = `nats://localhost:${server.port}`;
      const agent = world.agent([], {
        IOTAGENT_NATS_ENABLED: "true",
        IOTAGENT_NATS_URL: url,
        IOTAGENT_NATS_CA: world.caFile,
      });
      const client = await connectNats({
        servers: url,
        user: "snapd",
        pass: DEFAULT_NATS_PASSWORD,
        tls: { ca: world.ca.certPem },
      });
      try {
        await agent.waitForLine(/connected to NATS .*; serving/);
        const status = await request(client, "iot.agent.mqtt.connection.status", {});
        assertEquals(status.connected, false);
        assertMatch((status.errorInfo as { message: string }).message, /not enrolled yet/);
        const agentStatus = await request(client, "v1.iot.agent.status", {});
        assertEquals([agentStatus.enrolled, agentStatus.outboxDepth], [false, 0]);
        assertEquals(agentStatus.phase, "waiting for a URL", "no params: the agent waits for the URL");
      } finally {
        await client.close();
        await server.stop();
        await Deno.remove(tlsDir, { recursive: true });
      }
    }, { configure: false });
  },
});

Deno.test({
  name:
    "asyncapi.yaml is valid for the official AsyncAPI parser: no error, no warning but the missing contact",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { Parser } = await import("@asyncapi/parser");
    const { document, diagnostics } = await new Parser().parse(
      await Deno.readTextFile(new URL("asyncapi.yaml", root)),
    );
    assertOk(document, "the document parses");
    const problems = diagnostics.filter((d) => d.severity <= 1 && d.code !== "asyncapi-info-contact");
    assertEquals(problems.map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`), []);
  },
});

/** A client that listens to everything it may: `>` and `_INBOX.>`; what it hears is kept. */
async function eavesdropper(
  connection: NatsConnection,
): Promise<{ heard: string[]; close(): Promise<void> }> {
  const heard: string[] = [];
  for (const filter of [">", "_INBOX.>"]) {
    const subscription = connection.subscribe(filter);
    (async () => {
      for await (const message of subscription) heard.push(`${message.subject} ${message.string()}`);
    })().catch(() => {});
  }
  await connection.flush().catch(() => {});
  return { heard, close: () => connection.close().catch(() => {}) };
}

Deno.test({
  name:
    "the shipped NATS configuration attacked: no client without the password hears a request or a reply, or can forge one",
  ...E2E,
  async fn() {
    await withApi(async (world, server, authorised) => {
      await world.online();
      const attempts = {
        "no credentials (guest)": { servers: server.url },
        "user guest with a password": { servers: server.url, user: "guest", pass: "anything" },
        "user snapd with a wrong password": { servers: server.url, user: "snapd", pass: "guess" },
        "an unknown user": { servers: server.url, user: "mallory", pass: "x" },
      };
      const listening: { who: string; heard: string[]; close(): Promise<void> }[] = [];
      for (const [who, options] of Object.entries(attempts)) {
        const connection = await connectNats({ ...options, reconnect: false }).catch((error: Error) => error);
        if (connection instanceof Error) {
          assertMatch(connection.message, /Authorization Violation/, who);
          continue;
        }
        listening.push({ who, ...await eavesdropper(connection) });
      }
      assertEquals(listening.map((l) => l.who), ["no credentials (guest)"], "who could connect");

      // a client written for the Go agent's API: default inboxes (nats.js request)
      const reply = await authorised.request("v1.iot.agent.status", new TextEncoder().encode("{}"), {
        timeout: 5000,
      });
      assertEquals(JSON.parse(reply.string()).deviceId, world.identity.enrolledIds[0]);
      assertEquals((await request(authorised, "v1.snapd.v2.snaps.get", {})).snaps !== undefined, true);

      // a forged reply on the authorised client's inbox, sent before the agent answers, is not accepted
      const guest = await connectNats({ servers: server.url, reconnect: false });
      const inbox = `_INBOX.victim.${crypto.randomUUID()}`;
      const replies: string[] = [];
      const subscription = authorised.subscribe(inbox);
      const collected = (async () => {
        for await (const message of subscription) replies.push(message.string());
      })();
      await authorised.flush();
      guest.publish(inbox, new TextEncoder().encode('{"version":"forged","enrolled":false}'));
      await guest.flush().catch(() => {});
      authorised.publish("v1.iot.agent.status", new TextEncoder().encode("{}"), { reply: inbox });
      const deadline = Date.now() + 5000;
      while (replies.length === 0 && Date.now() < deadline) await sleep(10);
      await sleep(SECOND_REPLY_WINDOW_MS);
      subscription.unsubscribe();
      await collected;
      await guest.close();
      assertEquals(replies.length, 1, `replies: ${replies}`);
      assertEquals(JSON.parse(replies[0]).enrolled, true, "the agent's reply, not the forged one");

      await sleep(SECOND_REPLY_WINDOW_MS);
      for (const { who, heard, close } of listening) {
        await close();
        assertEquals(heard, [], `${who} heard the API's traffic`);
      }
    });
  },
});

Deno.test({
  name: "a password in nats.url reaches no line of the agent's log",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const secret = "url-held-password-7";
      const agent = world.agent([], {
        IOTAGENT_NATS_ENABLED: "true",
        IOTAGENT_NATS_URL: `nats://snapd:${secret}@127.0.0.1:${freePort()}`,
      });
      const setting = await agent.waitForLine(/DEBUG .*setting nats\.url=/);
      assertMatch(setting, /setting nats\.url=nats:\/\/\*\*\*@127\.0\.0\.1:\d+ \(env IOTAGENT_NATS_URL\)/);
      await agent.waitForLine(/WARN .*connecting to NATS .* failed/);
      assertEquals(agent.matching(new RegExp(secret)), [], "the password is never logged");
      assertEquals(agent.matching(/snapd:/), [], "nor the user name with it");
    }, { configure: false });
  },
});

Deno.test({
  name: "with the published default password every write subject is refused and says why; reads are answered",
  ...E2E,
  async fn() {
    await withApi(async (world, _server, attacker, agent) => {
      await world.online();
      const refusal =
        /^write refused: nats\.snapd\.password is the published default, so any local client could change this device; set a private password: set nats\.snapd\.password \(IOTAGENT_NATS_SNAPD_PASSWORD/;
      const writes = SUBJECTS.filter((s) => s.writes);
      assertEquals(writes.map((s) => s.subject), [
        "v1.snapd.v2.apps.post",
        "v1.snapd.v2.snaps.*.post",
        "snapd.v2.apps.post",
      ]);
      for (const { subject } of writes) {
        const concrete = subject.replace("*", "peer-svc");
        for (
          const body of [
            { action: "stop", names: ["peer-svc.daemon"] },
            { action: "restart", names: ["peer-svc"] },
            { action: "switch", channel: "latest/edge" },
            "{not json",
          ]
        ) {
          const reply = await request(attacker, concrete, body);
          assertMatch(reply.error as string, refusal, `${concrete} ${JSON.stringify(body)}`);
        }
      }
      assertEquals(
        world.snapd.requests.filter((r) => r.method === "POST").map((r) => r.path),
        [],
        "no write reached snapd",
      );
      // the read-only subjects keep working for the same client
      assertMatch(
        (await request(attacker, "v1.snapd.v2.assertions.get", { type: "model" })).stream as string,
        /^type: model\n/,
      );
      assertEquals(((await request(attacker, "v1.snapd.v2.snaps.get", {})).snaps as unknown[]).length, 3);
      assertOk(Array.isArray((await request(attacker, "v1.snapd.v2.changes.get", {})).changes));
      assertEquals(await request(attacker, "iot.agent.mqtt.connection.status", {}), { connected: true });
      const status = await request(attacker, "v1.iot.agent.status", {});
      assertMatch((status.nats as { writesRefused: string }).writesRefused, refusal);
      assertEquals(
        agent.matching(
          /WARN .*the local API refuses every write: nats\.snapd\.password is the published default/,
        ).length,
        1,
      );
    }, DEFAULT_NATS_PASSWORD);
  },
});

/**
 * A rogue plain-text listener on the port the agent dials for NATS: it greets like nats-server (with and without
 * claiming TLS) and records every byte the agent sends.
 */
async function rogueNats(tlsRequired: boolean, fn: (url: string, received: () => string) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const chunks: Uint8Array[] = [];
  const info = { server_id: "ROGUE", version: "2.9.10", proto: 1, auth_required: true, max_payload: 1048576 };
  const serving = (async () => {
    for await (const connection of listener) {
      (async () => {
        await connection.write(
          new TextEncoder().encode(`INFO ${JSON.stringify({ ...info, tls_required: tlsRequired })}\r\n`),
        );
        for await (const chunk of connection.readable) {
          chunks.push(chunk);
          // it cannot finish a TLS handshake the agent verifies: it hangs up, as a real impostor would
          if (tlsRequired) break;
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  try {
    await fn(
      `nats://127.0.0.1:${listener.addr.port}`,
      () => chunks.map((c) => new TextDecoder("latin1").decode(c)).join(""),
    );
  } finally {
    listener.close();
    await serving;
  }
}

Deno.test({
  name:
    "a rogue plain-text listener on the NATS port learns no password when nats.ca is set (and does without)",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const env = { IOTAGENT_NATS_ENABLED: "true", IOTAGENT_NATS_SNAPD_PASSWORD: PRIVATE_PASSWORD };
      for (const tlsRequired of [false, true]) {
        await rogueNats(tlsRequired, async (url, received) => {
          const agent = world.agent([], { ...env, IOTAGENT_NATS_URL: url, IOTAGENT_NATS_CA: world.caFile });
          await agent.waitForLine(/WARN .*connecting to NATS .* failed/);
          await agent.stop();
          assertOk(
            !received().includes(PRIVATE_PASSWORD),
            `tls_required ${tlsRequired}: the rogue read the password`,
          );
          assertOk(!received().includes("CONNECT"), `tls_required ${tlsRequired}: the rogue read a CONNECT`);
        });
      }
      // the same listener without nats.ca: the password goes out in clear, as doctor warns
      await rogueNats(false, async (url, received) => {
        const agent = world.agent([], { ...env, IOTAGENT_NATS_URL: url });
        for (let i = 0; i < 100 && !received().includes(PRIVATE_PASSWORD); i++) await sleep(50);
        await agent.stop();
        assertOk(received().includes(PRIVATE_PASSWORD), "without nats.ca the rogue reads the password");
      });
    }, { configure: false });
  },
});
