/**
 * The agent on a real broker cluster: three nats-server nodes with JetStream and their MQTT listeners (TLS, client
 * certificates mapped to users, sessions replicated to three). The DMS publishes on the first node, the identity
 * service hands out the second, and `mqtt.brokers` names the other two. The agent's node is killed while actions
 * stream in: the agent moves to a live node, every action is carried out exactly once and answered (a reply
 * whose acknowledgement died with the node may arrive twice, identical), and once its node is back the agent
 * moves back to it.
 */
import { assertEquals } from "../support/assert.ts";
import { NatsCluster } from "../support/nats_cluster.ts";
import { until } from "../support/wait.ts";
import { E2E, startWorld } from "../support/world.ts";

const ACTIONS = 40;
/** The device certificate's common name: the cluster knows its user from the start (see NatsCluster.grantDevice). */
const DEVICE_CN = "device-on-the-cluster";

Deno.test({
  name:
    "a three-node NATS cluster: the agent's node killed mid-stream, it moves to a live node, every action carried out once and answered; back to its node once it returns",
  ...E2E,
  async fn() {
    const world = await startWorld<NatsCluster>({
      startBroker: (ca) => NatsCluster.start(ca, [`CN=${DEVICE_CN},O=Test Org`]),
      deviceCommonName: DEVICE_CN,
      dmsPersistent: true,
    });
    try {
      const [dmsNode, agentNode, thirdNode] = world.broker.mqttPorts;
      const agent = world.agent([], {
        IOTAGENT_MQTT_BROKERS: `localhost:${thirdNode},localhost:${dmsNode}`,
        IOTAGENT_MQTT_FAILBACK_INTERVAL: "2s",
      }, Deno.env.get("ECHO"));
      const id = await world.online({ timeoutMs: 60_000 });
      await agent.waitForLine(new RegExp(`connected to broker localhost:${agentNode}\\b`));

      const sent: string[] = [];
      const changing = (i: number) => i % 2 === 0; // disable and enable peer-svc in turn: each is an effect
      const answers = (actionId: string) => world.dms.responses(id).filter((m) => m.json?.id === actionId);
      const stream = (async () => {
        for (let i = 0; i < ACTIONS; i++) {
          const actionId = `during-the-move-${i}`;
          sent.push(actionId);
          const action = changing(i)
            ? { id: actionId, action: i % 4 === 0 ? "disable" : "enable", snap: "peer-svc" }
            : { id: actionId, action: "device" };
          await world.dms.send(id, JSON.stringify(action));
          await new Promise((resolve) => setTimeout(resolve, 40));
        }
      })();
      await until(() => sent.length >= ACTIONS / 4, "a quarter of the actions sent", 30_000);
      const killedAt = agent.mark();
      await world.broker.kill(1);
      await stream;
      // a live node: the next in its list, or the one after when the next cannot take the session yet
      await agent.waitForLine(new RegExp(`connected to broker localhost:(${thirdNode}|${dmsNode})\\b`), {
        after: killedAt,
        timeoutMs: 60_000,
      });
      await until(
        () => sent.every((actionId) => answers(actionId).length > 0),
        "every action answered",
        60_000,
      )
        .catch((error) => {
          const missing = sent.filter((actionId) => answers(actionId).length === 0);
          const about = agent.lines.filter((line) =>
            /outbox|dms.mqtt|delivery/.test(line) ||
            missing.some((m) => line.includes(`${m} `) || line.endsWith(m))
          );
          throw new Error(`${error.message}: no answer to ${missing.join(", ")}\n${about.join("\n")}`);
        });
      // one more round trip after the last answer: a copy still on its way would have arrived before it
      assertEquals((await world.dms.request(id, { action: "device" }, 30_000)).success, true);
      const effects = world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").length;
      assertEquals(effects, sent.filter((_, i) => changing(i)).length, "each change made exactly once");
      for (const actionId of sent) {
        const copies = answers(actionId).map((m) => m.payload);
        assertEquals(copies[0] && JSON.parse(copies[0]).success, true, `${actionId} succeeded`);
        // QoS 1: a reply whose PUBACK died with the node goes out again from the outbox — the same reply, never
        // a second execution
        assertEquals(new Set(copies).size, 1, `every copy of the reply to ${actionId} is the same`);
      }

      await world.broker.revive(1);
      await agent.waitForLine(new RegExp(`broker localhost:${agentNode} answers again: moving back`), {
        timeoutMs: 60_000,
      });
      const movingBack = agent.lines.findIndex((line) => /answers again: moving back/.test(line));
      // the revived node may not take the session at once (its streams catch up): then the next node, and back
      await agent.waitForLine(new RegExp(`INFO .*connected to broker localhost:${agentNode}\\b`), {
        after: movingBack,
        timeoutMs: 60_000,
      });
      assertEquals((await world.dms.request(id, { action: "device" }, 30_000)).success, true);
    } finally {
      await world.stop();
    }
  },
});
