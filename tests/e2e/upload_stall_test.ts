/**
 * Uploads wait in a line of their own: an upload server that takes the body and never answers holds only the
 * uploads behind it, never `device`, `server` or `list` (they share the empty snap key with `logs`), and each
 * upload fails at `uploads.timeout` instead of hanging.
 */
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { memoryOf } from "../support/proc_stats.ts";
import { count, trial } from "../support/reliability.ts";
import { UploadServer } from "../support/upload_server.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";

/** The agent's resident memory stays below this while uploads are stalled and queued, in bytes. */
const RSS_BOUND = 160 * 1024 * 1024;

Deno.test({
  name: "a stalled upload holds no device, server or list: they are answered while it hangs",
  ...E2E,
  async fn() {
    await trial(
      { area: "flood", fault: "uploads to a server that takes the body and never answers" },
      1,
      async (_, counts) => {
        const uploads = UploadServer.start();
        uploads.stall = true;
        try {
          await withWorld(async (world) => {
            world.snapd.logs = [{
              timestamp: "2026-11-27T00:00:00Z",
              message: "hello",
              sid: "peer",
              pid: "1",
            }];
            const agent = world.agent([], { IOTAGENT_UPLOADS_ALLOW_HTTP: "true" });
            const id = await world.online();
            const flood = count(10, 50);
            for (let i = 0; i < flood; i++) {
              const data = JSON.stringify({ url: uploads.url(`/logs-${i}`), limit: 10 });
              await world.dms.send(id, JSON.stringify({ action: "logs", id: `logs-${i}`, data }));
            }
            await until(() => uploads.received.length === 1, "the first upload reached the stalled server");
            for (const action of ["device", "server", "list"]) {
              const reply = await world.dms.request(id, { action, id: `${action}-during-upload` }).catch(
                (error) => {
                  counts.lost++;
                  throw error;
                },
              );
              assertEquals(reply.success, true, `${action} answered while the upload hangs`);
            }
            assertEquals(uploads.received.length, 1, "uploads go one at a time");
            const rss = memoryOf(agent.pid).rss;
            assertOk(rss < RSS_BOUND, `RSS ${rss} under ${RSS_BOUND}`);
            counts.recovered++;
          });
        } finally {
          await uploads.stop();
        }
      },
    );
  },
});

Deno.test({
  name: "an upload the server never answers fails at uploads.timeout, and the next one goes",
  ...E2E,
  async fn() {
    const uploads = UploadServer.start();
    uploads.stall = true;
    try {
      await withWorld(async (world) => {
        world.snapd.logs = [{ timestamp: "2026-11-27T00:00:00Z", message: "hello", sid: "peer", pid: "1" }];
        world.agent([], { IOTAGENT_UPLOADS_ALLOW_HTTP: "true", IOTAGENT_UPLOADS_TIMEOUT: "2s" });
        const id = await world.online();
        const data = (path: string) => JSON.stringify({ url: uploads.url(path) });
        await world.dms.send(id, JSON.stringify({ action: "logs", id: "logs-stalled", data: data("/a") }));
        await world.dms.send(id, JSON.stringify({ action: "logs", id: "logs-next", data: data("/b") }));
        const stalled = await world.dms.response(id, "logs-stalled", { timeoutMs: 30_000 });
        assertEquals(stalled.success, false);
        assertMatch(String(stalled.message), /not finished within 2s \(uploads\.timeout\)/);
        await until(() => uploads.received.length === 2, "the next upload started", 30_000);
        assertEquals((await world.dms.response(id, "logs-next", { timeoutMs: 30_000 })).success, false);
      });
    } finally {
      await uploads.stop();
    }
  },
});
