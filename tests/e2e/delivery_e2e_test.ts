/**
 * Delivery guarantees end to end, with the real agent process and mosquitto: exactly one effect and one
 * response per action id across redeliveries, agent kills and broker outages; per-snap ordering; required-install.
 */
import { assertEquals, assertOk } from "../support/assert.ts";
import { makeSnap } from "../support/fake_snapd.ts";
import { E2E, withWorld, type World } from "../support/world.ts";

import { sleep, until } from "../support/wait.ts";

/**
 * Sends `action` on peer-svc with snapd's answer `delayMs` late; resolves once snapd has received it (its change
 * is started, the agent is waiting for the answer).
 */
async function sendSlow(world: World, deviceId: string, action: string, id: string, delayMs: number) {
  const posts = () => world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").length;
  const before = posts();
  world.snapd.delayNext({ method: "POST", path: "/v2/snaps/peer-svc" }, delayMs);
  await world.dms.send(deviceId, JSON.stringify({ action, id, snap: "peer-svc" }));
  await until(() => posts() === before + 1, `snapd received ${id}`);
}

function responsesTo(world: World, deviceId: string, id: string) {
  return world.dms.responses(deviceId).filter((m) => m.json?.id === id);
}

Deno.test({
  name: "a redelivered action id gets the stored response, not a second snapd call",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent();
      const id = await world.online();
      const payload = JSON.stringify({ action: "disable", id: "dup-1", snap: "peer-svc" });
      await world.dms.send(id, payload);
      const first = await world.dms.response(id, "dup-1");
      await world.dms.send(id, payload);
      await until(() => responsesTo(world, id, "dup-1").length === 2, "the second answer");
      assertEquals(responsesTo(world, id, "dup-1")[1].json, first);
      assertEquals(world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").length, 1);
    });
  },
});

Deno.test({
  name:
    "killed between 'snapd change started' and 'response published': after restart one response, one snapd request",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const first = world.agent();
      const id = await world.online();
      await sendSlow(world, id, "disable", "kill-1", 4000);
      await first.stop("SIGKILL");
      assertEquals(responsesTo(world, id, "kill-1").length, 0);
      const change = world.snapd.changes.at(-1)!;

      const second = world.agent();
      const response = await world.dms.response(id, "kill-1");
      assertEquals([response.success, response.result], [true, change.id]);
      await second.waitForLine(/action kill-1 had started change \d+ before the restart: answering with it/);
      await sleep(1500); // a window for a second response, which must not come
      assertEquals(responsesTo(world, id, "kill-1").length, 1, "exactly one response");
      assertEquals(world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").length, 1, "snapd saw one request");
    });
  },
});

Deno.test({
  name: "an action accepted but not started before a kill runs once after the restart",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const first = world.agent();
      const id = await world.online();
      await sendSlow(world, id, "disable", "slow-1", 4000);
      await world.dms.send(id, JSON.stringify({ action: "enable", id: "queued-1", snap: "peer-svc" })); // waits behind it
      await first.waitForLine(/action enable requested id=queued-1/); // in the journal, acknowledged
      await first.stop("SIGKILL");
      world.agent();
      await world.dms.response(id, "queued-1");
      await world.dms.response(id, "slow-1");
      assertEquals(
        world.snapd.requestsTo("POST", "/v2/snaps/peer-svc").map((r) => JSON.parse(r.body).action),
        ["disable", "enable"],
      );
    });
  },
});

Deno.test({
  name:
    "a response produced while the broker is down is published after it comes back, also across an agent restart",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const first = world.agent();
      const id = await world.online();
      await sendSlow(world, id, "disable", "outage-1", 1500);
      await world.broker.stop();
      await first.waitForLine(/action disable succeeded id=outage-1/);
      await first.waitForLine(/response kept for the next connection/);
      await first.stop("SIGKILL"); // the response is only in the outbox now
      await world.broker.restart();
      await world.dms.ready();
      assertEquals(responsesTo(world, id, "outage-1").length, 0);
      const second = world.agent();
      const response = await world.dms.response(id, "outage-1");
      assertEquals(response.success, true);

      // an outage without a restart: the stored response goes out after the reconnect. The agent is paused
      // while the broker restarts so that the DMS is subscribed again before the agent reconnects.
      await sendSlow(world, id, "enable", "outage-2", 1500);
      await world.broker.stop();
      await second.waitForLine(/action enable succeeded id=outage-2/);
      await second.waitForLine(/response kept for the next connection/);
      Deno.kill(second.pid, "SIGSTOP");
      try {
        await world.broker.restart();
        await world.dms.ready();
      } finally {
        Deno.kill(second.pid, "SIGCONT");
      }
      const late = await world.dms.response(id, "outage-2", { timeoutMs: 30_000 }).catch((error) => {
        throw new Error(
          `${error.message}\nagent:\n${second.tail(25)}\nbroker:\n${world.broker.log?.tail(25)}`,
        );
      });
      assertEquals(late.success, true);
      await sleep(1000); // a window for a second response, which must not come
      assertEquals([responsesTo(world, id, "outage-1").length, responsesTo(world, id, "outage-2").length], [
        1,
        1,
      ]);
    });
  },
});

Deno.test({
  name: "actions on one snap run in arrival order; another snap does not wait for them",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent();
      const id = await world.online();
      world.snapd.delayNext({ method: "POST", path: "/v2/snaps/peer-svc" }, 2000);
      const after = world.dms.mark();
      await world.dms.send(id, JSON.stringify({ action: "disable", id: "a1", snap: "peer-svc" }));
      await world.dms.send(id, JSON.stringify({ action: "enable", id: "a2", snap: "peer-svc" }));
      await world.dms.send(id, JSON.stringify({ action: "refresh", id: "b1", snap: "peer-bbbase" }));
      for (const action of ["a1", "a2", "b1"]) await world.dms.response(id, action, { after });
      const order = world.dms.responses(id).map((m) => m.json!.id).filter((x) =>
        ["a1", "a2", "b1"].includes(x as string)
      );
      assertEquals(order, ["b1", "a1", "a2"]);
    });
  },
});

Deno.test({
  name:
    "required-install from the DMS: installed from latest/stable, and a pending install survives an agent restart",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const first = world.agent();
      await world.online();
      world.snapd.store.set("hello-world", makeSnap("hello-world", { revision: "29" }));
      const payload = JSON.stringify({
        id: "r1",
        snaps: [{ channel: "latest", name: "hello-world", track: "stable" }, { name: "htop" }],
      });
      await world.dms.publish("devices/actions/PEER0001/required-install", payload);
      await first.waitForLine(/required snap hello-world installed/);
      await first.waitForLine(/installing required snap htop failed: snap "htop" not found/);
      assertEquals(JSON.parse(world.snapd.requestsTo("POST", "/v2/snaps/hello-world")[0].body), {
        action: "install",
        channel: "latest/stable",
      });
      await first.stop("SIGKILL");
      world.snapd.store.set("htop", makeSnap("htop", { revision: "4" }));
      const second = world.agent();
      await second.waitForLine(/required snap htop installed/);
      assertOk(world.snapd.snaps.some((s) => s.name === "htop"));
    });
  },
});

Deno.test({
  name: "unregister answers, then clears the enrollment and waits for a URL without exiting",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const agent = world.agent();
      const id = await world.online();
      const response = await world.dms.request(id, { action: "unregister" });
      assertEquals([response.success, (response.result as Record<string, unknown>).serial], [
        true,
        "PEER0001",
      ]);
      await agent.waitForLine(/not configured: waiting for the identity service URL/);
      await agent.waitForLine(/forgot the old enrollment's pending work responses=0 requiredSnaps=0/);
      const files = [...Deno.readDirSync(world.dataDir)].map((e) => e.name);
      assertEquals(files.includes(".secret") || files.includes("params"), false);
      await sleep(300); // a window for an exit, which must not come
      assertEquals(agent.matching(/stopped/).length, 0, "still running");
    });
  },
});
