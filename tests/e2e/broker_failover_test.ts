/**
 * Broker failover against real mosquitto brokers: every address a broker's name has is tried (IPv6 and IPv4, in
 * the resolver's order), the brokers of `mqtt.brokers` follow the identity service's in order — each verified by
 * its own name — and the session moves back to the first broker once it answers again.
 *
 * The names under test (`broker.test`) have no DNS: a resolver hands the session the addresses the system resolver
 * would give a name with an AAAA and an A record. The brokers, TLS and the connection attempts are all real.
 */
import { systemClock } from "../../lib/clock.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { parseBrokerEntry } from "../../lib/mqtt/broker_address.ts";
import { BrokerRotation, resolveAll } from "../../lib/mqtt/broker_rotation.ts";
import { MqttSession, type MqttSessionOptions } from "../../lib/mqtt/session.ts";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { DmsClient } from "../support/dms_client.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { TestCA } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { until } from "../support/wait.ts";

const DEVICE_ID = "2F0t0YpAt7rYhpmdpfDxh3kXLU5";
const NAME = "broker.test";

/** A broker whose certificate names `broker.test`, listening on one loopback address. */
function brokerTestCertificate(ca: TestCA) {
  return ca.issue(NAME, { dns: [NAME] });
}

async function withSessions(
  ca: TestCA,
  fn: (make: (options: Partial<MqttSessionOptions>) => MqttSession, logs: MemorySink) => Promise<void>,
) {
  const device = ca.issue("device-cn-1");
  const logs = new MemorySink();
  const sessions: MqttSession[] = [];
  try {
    await fn(
      (options) => {
        const session = new MqttSession({
          clock: systemClock,
          host: NAME,
          port: 1,
          clientId: DEVICE_ID,
          certificate: device.certPem,
          privateKey: device.keyPem,
          trust: { ca: [ca.certPem], verify: true, sources: ["test CA"] },
          subscriptions: [{ topic: `devices/sub/${DEVICE_ID}`, qos: 1 }],
          backoff: { initialMs: 50, maxMs: 200 },
          reconnectSpreadMs: 50,
          log: createLogger("test.mqtt", { level: "debug", sink: logs }),
          onMessage: () => {},
          ...options,
        });
        sessions.push(session);
        return session;
      },
      logs,
    );
  } finally {
    await Promise.all(sessions.map((s) => s.stop()));
  }
}

Deno.test("the system resolver gives every address of a name; an address is its own", async () => {
  assertEquals(await resolveAll(parseBrokerEntry("localhost:8883")), ["127.0.0.1"]);
  assertEquals(await resolveAll(parseBrokerEntry("[::1]:8883")), ["::1"]);
  assertEquals(await resolveAll(parseBrokerEntry("10.0.0.5:8883")), ["10.0.0.5"]);
});

for (
  const [listen, addresses] of [
    ["127.0.0.1", ["::1", "127.0.0.1"]],
    ["::1", ["127.0.0.1", "::1"]],
  ] as const
) {
  Deno.test(`a name with addresses ${addresses.join(", ")}: the dead one is passed over at once, no warning; TLS verifies the name`, async () => {
    const ca = TestCA.create();
    const broker = await Mosquitto.start({
      ca,
      device: { address: listen, server: brokerTestCertificate(ca) },
    });
    try {
      await withSessions(ca, async (session, logs) => {
        const resolved: string[] = [];
        const s = session({
          port: broker.devicePort,
          resolve: (b) => {
            resolved.push(b.label);
            return Promise.resolve([...addresses]);
          },
        });
        s.start();
        await until(() => s.connected, "connected", 10_000);
        assertEquals(resolved, [`${NAME}:${broker.devicePort}`]);
        assertEquals(s.broker, `${NAME}:${broker.devicePort}`);
        assertMatch(
          logs.lines.join("\n"),
          new RegExp(
            `DEBUG .*connecting to broker ${NAME}:\\d+ \\(${addresses[0].replace(/\./g, "\\.")}\\) failed: `,
          ),
        );
        assertOk(
          logs.matching(
            new RegExp(`INFO .*connected to broker ${NAME}:\\d+ \\(${listen.replace(/\./g, "\\.")}\\)`),
          )
            .length === 1,
          logs.lines.join("\n"),
        );
        assertEquals(logs.matching(/ WARN /), [], "a dead address of a live broker is no warning");
      });
    } finally {
      await broker.dispose();
    }
  });
}

Deno.test("every address down: one warning naming each address and its reason, then the backoff, then again", async () => {
  await withSessions(TestCA.create(), async (session, logs) => {
    const port = freePort();
    const s = session({ port, resolve: () => Promise.resolve(["::1", "127.0.0.1"]) });
    s.start();
    const roundWarning = /WARN .*connecting to any of 2 broker addresses failed: /;
    await until(() => logs.matching(roundWarning).length > 0, "a warning for the round");
    const [warning] = logs.matching(roundWarning);
    assertMatch(
      warning,
      new RegExp(
        `failed: ${NAME}:${port} \\(::1\\): [^;]*ECONNREFUSED[^;]*; ${NAME}:${port} \\(127\\.0\\.0\\.1\\): .*ECONNREFUSED`,
      ),
    );
    await until(
      () => logs.matching(/DEBUG .*connecting to any of 2 broker addresses failed again: /).length > 0,
      "the next round, after the backoff",
    );
    assertEquals(
      logs.matching(/WARN .*connecting to any of/).length,
      1,
      "the same cause is warned about once",
    );
  });
});

Deno.test("mqtt.brokers: the next broker when the first is down, each verified by its own name; back to the first once it answers", async () => {
  const ca = TestCA.create();
  const impostor = await Mosquitto.start({ ca, server: ca.issue("impostor", { dns: ["impostor.example"] }) });
  const second = await Mosquitto.start({ ca });
  const third = await Mosquitto.start({ ca });
  const firstPort = freePort();
  let first: Mosquitto | undefined;
  const dms = await DmsClient.connect({ port: second.port, ca });
  try {
    await withSessions(ca, async (session, logs) => {
      const s = session({
        host: "localhost",
        port: firstPort,
        moreBrokers: [`localhost:${impostor.port}`, `localhost:${second.port}`, `localhost:${third.port}`]
          .map(
            parseBrokerEntry,
          ),
        failbackMs: 300,
      });
      s.start();
      await until(() => s.connected, "connected to a broker that answers", 10_000);
      assertEquals(s.broker, `localhost:${second.port}`);
      assertMatch(
        logs.lines.join("\n"),
        new RegExp(
          `connecting to broker localhost:${impostor.port} .*failed: .*names DNS:impostor\\.example`,
        ),
      );
      assertMatch(
        logs.lines.join("\n"),
        new RegExp(
          `INFO .*connected to broker localhost:${second.port} .*broker localhost:${firstPort} did not answer`,
        ),
      );
      assertEquals(logs.matching(/ WARN /), [], "a down first broker with a live next one is no warning");
      const after = dms.mark();
      await s.publish(`devices/pub/${DEVICE_ID}`, "from the second broker", 1);
      await dms.waitFor((m) => m.payload === "from the second broker", { after });

      first = await Mosquitto.start({ ca, port: firstPort });
      await until(() => logs.matching(/answers again: moving back/).length > 0, "moving back", 15_000);
      const movingBack = logs.lines.findIndex((line) => /answers again: moving back/.test(line));
      await until(() => s.connected && s.broker !== `localhost:${second.port}`, "connected again", 15_000);
      const next = logs.lines.slice(movingBack).find((line) => /INFO .*connected to broker /.test(line));
      assertMatch(
        next ?? "",
        new RegExp(`connected to broker localhost:${firstPort}\\b`),
        "straight to the first",
      );
      assertMatch(
        logs.lines.join("\n"),
        new RegExp(`INFO .*broker localhost:${firstPort} answers again: moving back`),
      );
      assertMatch(
        logs.lines.join("\n"),
        new RegExp(`INFO .*disconnected from broker localhost:${second.port} reason="moving back`),
      );
      assertEquals(logs.matching(/ WARN /), [], "moving back is no warning");
    });
  } finally {
    await dms.close();
    await Promise.all([impostor.dispose(), second.dispose(), third.dispose(), first?.dispose()]);
  }
});

Deno.test("a broker listed twice (mqtt.brokers naming every node) is tried once, in its first place", async () => {
  const brokers = ["a.example:8883", "b.example:8883", "a.example:8883", "c.example:8883", "b.example:8883"]
    .map(parseBrokerEntry);
  const rotation = new BrokerRotation(brokers, (broker) => Promise.resolve([broker.host]));
  assertEquals(rotation.brokers.map((b) => b.label), ["a.example:8883", "b.example:8883", "c.example:8883"]);
  const tried = [];
  do tried.push((await rotation.next()).broker.label); while (!rotation.roundOver);
  assertEquals(tried, ["a.example:8883", "b.example:8883", "c.example:8883"]);
});
