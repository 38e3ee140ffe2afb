/**
 * The broker as the identity service names it — by host name, by IPv4 address, by IPv6 address with or without
 * brackets — with mosquitto certificates that carry only the matching name, and certificates that name another
 * host or address: the real agent enrolls, connects and answers, or refuses with one line that names both names
 * and the remedies, and keeps running.
 */
import { assertEquals, assertIncludes, assertOk } from "../support/assert.ts";
import type { IssueOptions, TestCA } from "../support/pki.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { E2E, withWorld } from "../support/world.ts";

/** A mosquitto whose device listener is on `address` with a certificate carrying exactly `names`. */
function brokerOn(address: string, names: Pick<IssueOptions, "dns" | "ips">) {
  return (ca: TestCA) => Mosquitto.start({ ca, device: { address, server: ca.issue("broker", names) } });
}

const ACCEPTED: { handedOut: string; listen: string; names: Pick<IssueOptions, "dns" | "ips"> }[] = [
  { handedOut: "127.0.0.1", listen: "127.0.0.1", names: { ips: ["127.0.0.1"] } },
  { handedOut: "::1", listen: "::1", names: { ips: ["::1"] } },
  { handedOut: "[::1]", listen: "::1", names: { ips: ["::1"] } },
  { handedOut: "localhost", listen: "127.0.0.1", names: { dns: ["localhost"] } },
];

for (const { handedOut, listen, names } of ACCEPTED) {
  const carried = [...(names.dns ?? []).map((n) => `DNS:${n}`), ...(names.ips ?? []).map((n) => `IP:${n}`)];
  Deno.test({
    name: `broker handed out as ${handedOut}, certificate with only ${
      carried.join(", ")
    }: enrolls, connects, answers`,
    ...E2E,
    async fn() {
      await withWorld(async (world) => {
        const agent = world.agent();
        const id = await world.online();
        const reply = await world.dms.request(id, { action: "device" });
        assertEquals([reply.success, (reply.result as { serial?: string }).serial], [true, "PEER0001"]);
        const connected = await agent.waitForLine(/connected to broker /);
        assertIncludes(
          connected,
          `connected to broker ${
            handedOut.includes(":") ? `[${handedOut.replace(/[[\]]/g, "")}]` : handedOut
          }:`,
        );
        assertEquals(agent.matching(/failed|Error/).length, 0, agent.tail(20));
      }, { startBroker: brokerOn(listen, names), brokerHost: handedOut });
    },
  });
}

const REFUSED = [
  {
    handedOut: "127.0.0.1",
    names: { dns: ["other.example"], ips: ["10.9.9.9"] },
    line: "the certificate names DNS:other.example, IP:10.9.9.9, not IP address 127.0.0.1",
  },
  {
    handedOut: "localhost",
    names: { ips: ["127.0.0.1"] },
    line: "the certificate names IP:127.0.0.1, not host name localhost",
  },
];

for (const { handedOut, names, line } of REFUSED) {
  Deno.test({
    name:
      `a certificate that names another host or address (${handedOut}) is refused in one line; mqtt.verify=false connects`,
    ...E2E,
    async fn() {
      await withWorld(async (world) => {
        const agent = world.agent();
        const refused = await agent.waitForLine(/connecting to broker .* failed: /);
        assertIncludes(refused, line);
        assertIncludes(refused, "mqtt.ca");
        assertIncludes(refused, "mqtt.verify=false");
        assertIncludes(refused, `Give the broker a certificate that names ${handedOut}`);
        await agent.waitForLine(/connecting to broker .* failed again/);
        assertEquals(world.dms.messages.filter((m) => m.topic.startsWith("devices/health/")).length, 0);
        assertOk(agent.matching(/connected to broker/).length === 0, "never connected");
        await agent.stop();

        const insecure = world.agent([], { IOTAGENT_MQTT_VERIFY: "false" });
        const id = await world.online();
        assertEquals((await world.dms.request(id, { action: "device" })).success, true);
        assertEquals(insecure.matching(/without verifying its certificate \(insecure\)/).length, 1);
      }, { startBroker: brokerOn("127.0.0.1", names), brokerHost: handedOut });
    },
  });
}
