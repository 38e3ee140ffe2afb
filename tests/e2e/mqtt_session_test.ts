/**
 * The MQTT session against a real mosquitto (mutual TLS, the DMS's ACL), with each failure injected: a
 * connection attempt that throws, a subscription the broker refuses through its ACL, a message handler that
 * fails, an owner callback that throws — the session logs each once, recovers, and receives afterwards. The
 * server name the session puts on the wire is read from its ClientHello.
 */
import { systemClock } from "../../lib/clock.ts";
import mqtt from "mqtt";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { type ConnectClient, MqttSession, type MqttSessionOptions } from "../../lib/mqtt/session.ts";
import { assertEquals, assertIncludes, assertOk } from "../support/assert.ts";
import { ClientHelloCatcher } from "../support/client_hello.ts";
import { DmsClient } from "../support/dms_client.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { TestCA } from "../support/pki.ts";
import { until } from "../support/wait.ts";
import { FakeClock } from "../support/fake_clock.ts";

const DEVICE_ID = "2F0t0YpAt7rYhpmdpfDxh3kXLU5";
const SERIAL = "PEER0001";
const COMMANDS = `devices/actions/${SERIAL}/#`;
const COMMON_NAME = "device-cn-1";
const GRANT = { commonName: COMMON_NAME, id: DEVICE_ID, serial: SERIAL, organizationId: "org-1" };

interface Bench {
  ca: TestCA;
  broker: Mosquitto;
  dms: DmsClient;
  logs: MemorySink;
  session(options?: Partial<MqttSessionOptions>): MqttSession;
}

async function withBroker(
  fn: (bench: Bench) => Promise<void>,
  acl: "file" | "dynamic-security" = "file",
): Promise<void> {
  const ca = TestCA.create();
  const broker = await Mosquitto.start({ ca, acl });
  const dms = await DmsClient.connect({ port: broker.port, ca });
  const device = ca.issue(COMMON_NAME);
  const logs = new MemorySink();
  const sessions: MqttSession[] = [];
  try {
    await fn({
      ca,
      broker,
      dms,
      logs,
      session(options = {}) {
        const session = new MqttSession({
          clock: systemClock,
          host: "localhost",
          port: broker.port,
          clientId: DEVICE_ID,
          certificate: device.certPem,
          privateKey: device.keyPem,
          trust: { ca: [ca.certPem], verify: true, sources: ["test CA"] },
          subscriptions: [{ topic: `devices/sub/${DEVICE_ID}`, qos: 1 }],
          backoff: { initialMs: 50, maxMs: 200 },
          log: createLogger("test.mqtt", { level: "debug", sink: logs }),
          onMessage: () => {},
          ...options,
        });
        sessions.push(session);
        return session;
      },
    });
  } finally {
    await Promise.all(sessions.map((s) => s.stop()));
    await dms.close();
    await broker.stop();
  }
}

Deno.test("a connection attempt that throws is logged once and retried with backoff; the session comes up", async () => {
  await withBroker(async ({ logs, session }) => {
    let attempts = 0;
    const connect: ConnectClient = (options) => {
      if (++attempts <= 3) throw new TypeError("The property 'options.servername' must not be an IP address");
      return mqtt.connect(options);
    };
    const s = session({ connect });
    s.start();
    await until(() => s.connected, "connected");
    assertEquals(attempts, 4);
    assertEquals(logs.matching(/WARN .*failed: The property 'options.servername'/).length, 1);
    assertEquals(logs.matching(/DEBUG .*failed again: The property 'options.servername'/).length, 2);
    assertEquals(logs.matching(/succeeded after 3 failed attempt\(s\)/).length, 1);
  });
});

Deno.test("a subscription the broker refuses (ACL, SUBACK 0x80) is not 'connected': reconnect and subscribe again until granted", async () => {
  await withBroker(async ({ broker, dms, logs, session }) => {
    await broker.grantDevice(GRANT, { commands: false });
    const received: string[] = [];
    const s = session({
      subscriptions: [{ topic: `devices/sub/${DEVICE_ID}`, qos: 1 }, { topic: COMMANDS, qos: 1 }],
      onMessage: (topic) => void received.push(topic),
      onConnect: () => void received.push("connect"),
    });
    s.start();
    await until(() => logs.matching(/refused the subscription/).length > 0, "the refusal");
    const refusal = logs.matching(/refused the subscription/)[0];
    assertIncludes(refusal, `the broker refused the subscription to ${COMMANDS} (SUBACK 0x80;`);
    assertIncludes(refusal, `check the broker's ACL for client id ${DEVICE_ID}); reconnecting`);
    assertEquals(s.connected, false, "a refused subscription is not a connection");
    await until(
      () => (broker.log?.matching(new RegExp(`\\tdevices/actions/${SERIAL}/# \\(QoS 1\\)`)).length ?? 0) >= 3,
      "three subscription attempts at the broker",
    );
    assertEquals(logs.matching(/WARN .*refused the subscription/).length, 1, "logged once per cause");
    assertEquals(received, [], "onConnect is not called while deaf");

    await broker.grantDevice(GRANT);
    await until(() => s.connected, "connected once the ACL allows it");
    assertEquals(received, ["connect"]);
    await dms.publish(`devices/actions/${SERIAL}/required-install`, "{}");
    await until(() => received.length === 2, "the command");
    assertEquals(received[1], `devices/actions/${SERIAL}/required-install`);
  }, "dynamic-security");
});

Deno.test("a message whose handler fails is not acknowledged: the session reconnects and the broker delivers it again, marked DUP", async () => {
  await withBroker(async ({ dms, logs, session }) => {
    const calls: string[] = [];
    const flags: boolean[] = [];
    const s = session({
      onMessage(_topic, payload, redelivered) {
        const text = new TextDecoder().decode(payload);
        calls.push(text);
        flags.push(redelivered);
        if (text === "first" && calls.length === 1) throw new Error("database is locked");
        if (text === "async" && calls.filter((c) => c === "async").length === 1) {
          return Promise.reject(new Error("disk I/O error"));
        }
      },
    });
    s.start();
    await until(() => s.connected, "connected");
    await dms.send(DEVICE_ID, "first");
    await until(() => calls.length === 2, "the redelivery");
    assertEquals(calls, ["first", "first"]);
    assertEquals(
      logs.matching(
        /WARN .*connecting to broker .* failed: handling a message on devices\/sub\/\S+ failed \(database is locked\); it was not acknowledged/,
      ).length,
      1,
    );
    await until(() => s.connected, "connected again");
    await dms.send(DEVICE_ID, "async");
    await until(() => calls.length === 4, "the second redelivery");
    await dms.send(DEVICE_ID, "third");
    await until(() => calls.length === 5, "the next message");
    assertEquals(calls, ["first", "first", "async", "async", "third"]);
    // the broker's DUP flag reaches the owner: a redelivery of an unacknowledged message says so
    assertEquals(flags, [false, true, false, true, false]);
  });
});

Deno.test("an owner callback that throws is logged; the session stays up and publishes", async () => {
  await withBroker(async ({ dms, logs, session }) => {
    const s = session({
      onConnect() {
        throw new Error("health timer exploded");
      },
    });
    s.start();
    await until(() => s.connected, "connected");
    assertEquals(logs.matching(/ERROR .*onConnect failed: health timer exploded/).length, 1);
    const after = dms.mark();
    await s.publish(`devices/pub/${DEVICE_ID}`, "still here", 1);
    const message = await dms.waitFor((m) => m.payload === "still here", { after });
    assertEquals(message.topic, `devices/pub/${DEVICE_ID}`);
  });
});

for (
  const [host, listen, expected] of [
    ["127.0.0.1", "127.0.0.1", undefined],
    ["::1", "::1", undefined],
    ["[::1]", "::1", undefined],
    ["localhost", "127.0.0.1", "localhost"],
  ] as const
) {
  Deno.test(`RFC 6066: connecting to ${host} sends ${expected ? `SNI "${expected}"` : "no SNI"}`, async () => {
    const catcher = new ClientHelloCatcher(listen);
    const logs = new MemorySink();
    const ca = TestCA.create();
    const device = ca.issue("device");
    const session = new MqttSession({
      clock: systemClock,
      host,
      port: catcher.port,
      clientId: DEVICE_ID,
      certificate: device.certPem,
      privateKey: device.keyPem,
      trust: { ca: [ca.certPem], verify: true, sources: ["test CA"] },
      subscriptions: [],
      backoff: { initialMs: 50, maxMs: 100 },
      log: createLogger("test.mqtt", { level: "debug", sink: logs }),
      onMessage: () => {},
    });
    try {
      session.start();
      const hello = await catcher.next();
      assertEquals(hello.serverName, expected);
      assertOk(logs.matching(/must not be an IP address/).length === 0);
    } finally {
      await session.stop();
      catcher.close();
    }
  });
}

Deno.test("after a connection that was up drops, the first reconnect waits a random delay within the reconnect spread", async () => {
  await withBroker(async ({ session }) => {
    const clock = new FakeClock();
    const s = session({
      clock,
      reconnectSpreadMs: 8000,
      backoff: { initialMs: 50, maxMs: 200, random: () => 0.5 },
    });
    s.start();
    await until(() => s.connected, "connected");
    s.restart("the broker went away");
    await until(() => !s.connected && clock.sleeping === 1, "waiting to reconnect");
    assertEquals(clock.pendingDelays, [4000], "half of the 8 s spread, by the random draw");
    await clock.advance(4000);
    await until(() => s.connected, "connected again");
  });
});
