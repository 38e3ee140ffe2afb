/**
 * The DMS link never dies, end to end: a broker whose ACL refuses the device's command subscription (mosquitto's
 * dynamic security, SUBACK 0x80) leaves the agent retrying, not "connected but deaf", and it answers once the ACL
 * allows it; an error nothing handled makes the real daemon (wired as `main.ts` wires it) drop and renew its
 * broker connection, and it answers afterwards.
 */
import { join } from "node:path";
import { buildConfig } from "../../lib/config.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { resolvePaths } from "../../lib/paths.ts";
import { runAgentDaemon } from "../../main.ts";
import { assertEquals, assertIncludes } from "../support/assert.ts";
import { type DeviceGrant, Mosquitto } from "../support/mosquitto.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";

Deno.test({
  name: "the broker refuses the command subscription (ACL): the agent reconnects until allowed, then answers",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      let device: DeviceGrant | undefined;
      world.identity.onEnrolled = (enrolled) => {
        device = enrolled;
        void world.broker.grantDevice(enrolled, { commands: false });
      };
      const agent = world.agent();
      const refused = await agent.waitForLine(/refused the subscription/);
      assertIncludes(refused, "WARN");
      assertIncludes(
        refused,
        "the broker refused the subscription to devices/actions/PEER0001/# (SUBACK 0x80;",
      );
      await agent.waitForLine(/connecting to broker .* failed again: the broker refused the subscription/);
      assertEquals(
        world.dms.messages.filter((m) => m.topic.startsWith("devices/health/")).length,
        0,
        "deaf: no health",
      );
      assertEquals(agent.matching(/connected to broker/).length, 0);

      await world.broker.grantDevice(device!);
      const id = await world.online();
      assertEquals((await world.dms.request(id, { action: "device" })).success, true);
      assertEquals(agent.matching(/WARN .*refused the subscription/).length, 1, "said once");
      await agent.waitForLine(/connecting to broker .* succeeded after \d+ failed attempt/);
    }, { startBroker: (ca) => Mosquitto.start({ ca, acl: "dynamic-security" }) });
  },
});

Deno.test({
  name: "an error nothing handled: the daemon renews its broker connection instead of exiting, and answers",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const env = { ...world.env, IOTAGENT_HEALTH_INTERVAL: "1h", IOTAGENT_METRICS_INTERVAL: "1h" };
      const { config } = buildConfig({ env });
      const paths = resolvePaths({ SNAP_DATA: world.dataDir, SNAP_COMMON: world.commonDir }, true);
      const logs = new MemorySink();
      const log = createLogger("agent", { level: "debug", sink: logs });
      const stop = new AbortController();
      let recover: (reason: string) => void = () => {};
      const daemon = runAgentDaemon(
        { config, paths, log, identity: { pid: Deno.pid } },
        stop.signal,
        (handler) => (recover = handler),
      );
      try {
        const id = await world.online();
        const connects = () =>
          world.broker.log?.matching(new RegExp(`New client connected .* as ${id}`)).length ?? 0;
        await until(() => connects() === 1, "the broker logs the connection");
        recover("TypeError: injected");
        await until(() => connects() === 2, "a new connection to the broker");
        assertEquals(
          logs.matching(
            /WARN .*disconnected from broker .*recovering from an unexpected error \(TypeError: injected\)/,
          ).length,
          1,
        );
        assertEquals((await world.dms.request(id, { action: "device" })).success, true);
      } finally {
        stop.abort();
        await daemon;
      }
      assertEquals(logs.matching(/INFO .*disconnected from broker/).length, 1, "clean stop");
      await Deno.stat(join(world.dataDir, "agent.db"));
    });
  },
});

Deno.test({
  name:
    "the daemon as shipped installs the last-resort guard: an unhandled rejection in a real process is logged, the link renewed, the action answered",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent([], { IOTAGENT_FAILPOINT: "reject:journalled" });
      const id = await world.online();
      const reply = await world.dms.request(id, { action: "device", id: "guarded" });
      assertEquals(reply.success, true);
      await agent.waitForLine(
        /ERROR .*guard: a promise rejection nothing handled: Error: failpoint journalled: an error nothing handles; recovering instead of exiting/,
      );
      await agent.waitForLine(/disconnected from broker .*recovering from an unexpected error/);
      await agent.waitForLine(/connected to broker/, {
        after: agent.lines.findIndex((l) => /recovering/.test(l)),
      });
      assertEquals(
        (await world.dms.request(id, { action: "device" })).success,
        true,
        "it answers afterwards",
      );
      assertEquals(world.dms.responses(id).filter((m) => m.json?.id === "guarded").length, 1, "one reply");
      const alive = await Promise.race([
        agent.status.then(() => false),
        new Promise((r) => setTimeout(() => r(true), 200)),
      ]);
      assertEquals(alive, true, "the process is alive");
    });
  },
});
