/**
 * A flood of local NATS requests must not starve the DMS: a real nats.js client sends thousands of requests at once
 * through a real nats-server while the DMS asks `device`. The agent's memory stays bounded, `device` is answered
 * within a generous margin of its time without the flood (measured in the same run), and every local request gets
 * its reply or the busy error — an invalid one its own error, at once.
 */
import type { NatsConnection } from "nats";
import { assertEquals, assertOk } from "../support/assert.ts";
import { connectNats } from "../../lib/adapters/nats_connect.ts";
import { DEFAULT_NATS_PASSWORD } from "../../lib/settings.ts";
import { NatsServer } from "../support/nats_server.ts";
import { memoryOf } from "../support/proc_stats.ts";
import { count, trial } from "../support/reliability.ts";
import { E2E, withWorld } from "../support/world.ts";

const root = new URL("../../", import.meta.url);
const serverConfig = await Deno.readTextFile(new URL("snap/nats-server.conf", root));
/** A private password: the default one refuses writes. */
const PASSWORD = "a private flood password 9c2d";
const MIB = 1024 * 1024;
/** The agent's resident memory stays below this while flooded, in bytes (about 90 MiB idle). */
const RSS_BOUND = 160 * MIB;
/** Each `GET /v2/snaps` answered this late: the flood's cost is snapd's, as on a device. */
const SNAPD_DELAY_MS = 20;
/** `nats.max-in-flight` of the flooded agent. */
const IN_FLIGHT = 1000;
const BUSY =
  /^busy: \d+ local API requests in flight and \d+ waiting \(nats\.max-in-flight, nats\.max-waiting, nats\.max-waiting-bytes\); try again later$/;

/** The time `device` takes, in ms. */
async function timeDevice(world: Parameters<Parameters<typeof withWorld>[0]>[0], id: string, tag: string) {
  const start = performance.now();
  const reply = await world.dms.request(id, { action: "device", id: tag }, 60_000);
  assertEquals(reply.success, true);
  return performance.now() - start;
}

/** Sends `total` requests at once (one in ten invalid: half malformed, half an impossible snap) and sorts the replies. */
async function flood(client: NatsConnection, total: number) {
  const outcome = { ok: 0, busy: 0, invalid: 0, other: [] as string[], lost: 0 };
  await Promise.all(Array.from({ length: total }, async (_, i) => {
    const invalid = i % 10 === 0;
    const subject = invalid ? "v1.snapd.v2.snaps.Not_A_Snap!.post" : "v1.snapd.v2.snaps.get";
    try {
      // malformed JSON, or a valid request for an impossible snap name
      const body = !invalid ? "{}" : i % 20 === 0 ? "{" : '{"action":"switch","channel":"latest/stable"}';
      const message = await client.request(subject, new TextEncoder().encode(body), {
        timeout: 120_000,
      });
      const reply = JSON.parse(new TextDecoder().decode(message.data));
      if (invalid && /malformed request|invalid snap name/.test(reply.error)) {
        outcome.invalid++;
      } else if (!invalid && Array.isArray(reply.snaps)) outcome.ok++;
      else if (!invalid && BUSY.test(reply.error)) outcome.busy++;
      else outcome.other.push(JSON.stringify(reply).slice(0, 200));
    } catch (error) {
      outcome.lost++;
      if (outcome.lost === 1) outcome.other.push(`no reply: ${error}`);
    }
  }));
  return outcome;
}

Deno.test({
  name: "a flood of local NATS requests: bounded memory, the DMS's device answered, every request answered",
  ...E2E,
  async fn() {
    let peak = 0;
    let ratio = 0;
    await trial(
      {
        area: "flood",
        fault:
          `${count(3000, 20000)} local NATS requests at once (snapd ${SNAPD_DELAY_MS} ms per snap list, ` +
          `nats.max-in-flight ${IN_FLIGHT}) while the DMS asks device`,
        note: () =>
          `peak RSS ${(peak / MIB).toFixed(0)} MiB (bound ${RSS_BOUND / MIB}); device ${
            ratio.toFixed(1)
          }× its ` +
          `time without the flood`,
      },
      1,
      async (_, counts) => {
        await withWorld(async (world) => {
          world.snapd.delayNext({ method: "GET", path: "/v2/snaps" }, SNAPD_DELAY_MS, Infinity);
          const config = serverConfig.replace(`"${DEFAULT_NATS_PASSWORD}"`, JSON.stringify(PASSWORD));
          const server = await NatsServer.fromConfig(config);
          const client = await connectNats({ servers: server.url, user: "snapd", pass: PASSWORD });
          try {
            const agent = world.agent([], {
              IOTAGENT_NATS_ENABLED: "true",
              IOTAGENT_NATS_URL: server.url,
              IOTAGENT_NATS_SNAPD_PASSWORD: PASSWORD,
              // far more in flight than snapd's 8 turns: the DMS's turn then depends on the priority at snapd's
              // limit, not only on the bound of the local requests
              IOTAGENT_NATS_MAX_IN_FLIGHT: String(IN_FLIGHT),
            });
            await agent.waitForLine(/connected to NATS .*; serving/);
            const id = await world.online();
            await timeDevice(world, id, "device-warm");
            const baseline = await timeDevice(world, id, "device-baseline");

            const total = count(3000, 20000);
            let flooding = true;
            const sampling = (async () => {
              while (flooding) {
                peak = Math.max(peak, memoryOf(agent.pid).rss);
                await new Promise((resolve) => setTimeout(resolve, 50));
              }
            })();
            const flooded = flood(client, total);
            await new Promise((resolve) => setTimeout(resolve, 200)); // the flood is at the agent
            const during = await timeDevice(world, id, "device-during-flood");
            const outcome = await flooded;
            flooding = false;
            await sampling;
            ratio = during / baseline;

            counts.lost += outcome.lost + outcome.other.length;
            assertEquals(
              outcome.other,
              [],
              "every reply is the snap list, the busy error, or the request's error",
            );
            assertEquals(outcome.ok + outcome.busy + outcome.invalid, total, "every request answered");
            assertEquals(outcome.invalid, total / 10, "every invalid request got its own error, not busy");
            assertOk(outcome.ok > 0, "some were served");
            // they arrive far faster than snapd serves them (8 at a time, 20 ms each): the bound must have refused some
            assertOk(
              outcome.busy > 0,
              "beyond nats.max-in-flight and nats.max-waiting a request is answered busy",
            );
            // generous: a device that waited behind the flood at snapd takes seconds (8.8 s for 20,000)
            assertOk(
              during <= 10 * baseline + 1500,
              `device took ${during.toFixed(0)} ms during the flood, ${baseline.toFixed(0)} ms without it`,
            );
            assertOk(
              peak < RSS_BOUND,
              `peak RSS ${(peak / MIB).toFixed(0)} MiB, bound ${RSS_BOUND / MIB} MiB`,
            );
            counts.recovered++;
          } finally {
            await client.close();
            await server.stop();
          }
        });
      },
    );
  },
});
