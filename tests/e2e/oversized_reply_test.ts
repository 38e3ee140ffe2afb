/**
 * A reply larger than the broker accepts (mosquitto `max_packet_size`: it drops the connection of a client that
 * sends more) must never block the replies after it: one over `mqtt.max-reply-bytes` is replaced by a refusal that
 * names its size, and one the broker keeps refusing anyway is set aside after three dropped connections, kept in
 * agent.db and reported, and the rest go out — across a restart too.
 */
import { join } from "node:path";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { runAgent } from "../support/agent_process.ts";
import { Mosquitto } from "../support/mosquitto.ts";
import { memoryOf } from "../support/proc_stats.ts";
import { count, trial } from "../support/reliability.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld, type World } from "../support/world.ts";

const BROKER_LIMIT = 131_072;
/** The agent's resident memory stays below this while it is flooded with large replies, in bytes. */
const RSS_BOUND = 160 * 1024 * 1024;

const options = {
  startBroker: (ca: Parameters<typeof Mosquitto.start>[0]["ca"]) =>
    Mosquitto.start({ ca, maxPacketSize: BROKER_LIMIT }),
};

/** Gives peer-svc a 200 KiB configuration value: its `conf` reply is larger than the broker takes. */
function bigConfig(world: World) {
  world.snapd.config.set("peer-svc", { blob: "x".repeat(200 * 1024) });
}

Deno.test({
  name: "a reply over mqtt.max-reply-bytes is answered with its size, and every later reply goes out",
  ...E2E,
  async fn() {
    await trial(
      {
        area: "flood",
        fault: "replies larger than the broker's max_packet_size (200 KiB conf, 128 KiB limit)",
      },
      1,
      async (_, counts) => {
        await withWorld(async (world) => {
          bigConfig(world);
          const agent = world.agent();
          const id = await world.online();
          const big = Array.from({ length: count(5, 20) }, (_, i) => `conf-big-${i}`);
          for (const action of big) {
            await world.dms.send(id, JSON.stringify({ action: "conf", id: action, snap: "peer-svc" }));
          }
          const device = await world.dms.request(id, { action: "device", id: "device-after" }, 30_000)
            .catch((error) => {
              counts.lost++;
              throw error;
            });
          assertEquals(device.success, true);
          for (const action of big) {
            const reply = await world.dms.response(id, action, { timeoutMs: 30_000 });
            assertEquals(reply.success, false);
            assertMatch(
              String(reply.message),
              /^the reply was too large to send: \d+ bytes, more than mqtt\.max-reply-bytes \(131072\)$/,
            );
          }
          const rss = memoryOf(agent.pid).rss;
          assertOk(rss < RSS_BOUND, `RSS ${rss} under ${RSS_BOUND}`);
          counts.recovered++;
        }, options);
      },
    );
  },
});

Deno.test({
  name: "a reply the broker keeps refusing is set aside after three tries, reported, and the rest go out",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      bigConfig(world);
      const env = { IOTAGENT_MQTT_MAX_REPLY_BYTES: String(1024 * 1024) }; // above the broker's own limit
      const first = world.agent([], env);
      const id = await world.online();
      await world.dms.send(id, JSON.stringify({ action: "conf", id: "conf-refused", snap: "peer-svc" }));
      const device = await world.dms.request(id, { action: "device", id: "device-behind" }, 45_000);
      assertEquals(device.success, true);
      await first.waitForLine(
        /a response was set aside: the broker dropped the connection each of the 3 times/,
      );
      const statusFile = join(world.runtimeDir, "status.json");
      await until(
        () => {
          try {
            return JSON.parse(Deno.readTextFileSync(statusFile)).setAsideReplies === 1;
          } catch {
            return false;
          }
        },
        "status.json counts the reply set aside",
        20_000,
      );
      const status = await runAgent(["status"], world.env);
      assertMatch(status.output, /Outbox +0 response\(s\) waiting for the broker; 1 set aside/);
      const doctor = await runAgent(["doctor"], world.env);
      assertMatch(doctor.output, /\[warn\] replies: 1 reply\(ies\) set aside/);

      // a restart does not send it again: the next reply goes out without a dropped connection
      await first.stop();
      const second = world.agent([], env);
      const after = world.dms.mark();
      await world.online({ after });
      assertEquals(
        (await world.dms.request(id, { action: "device", id: "device-restarted" }, 30_000)).success,
        true,
      );
      assertEquals(second.lines.filter((line) => /disconnected from broker/.test(line)).length, 0);
      assertEquals(world.dms.responses(id).filter((m) => m.json?.id === "conf-refused").length, 0);
    }, options);
  },
});
