/**
 * A coarse functional check of the reply path's latency through the test broker (mosquitto with
 * `set_tcp_nodelay true`, as DMS brokers run): without TCP_NODELAY on the agent's socket, Nagle's algorithm meets
 * the broker's delayed ACK and every reply waits about 40 ms. The figures themselves belong to `deno task bench`.
 */
import { assertOk } from "../support/assert.ts";
import { E2E, withWorld } from "../support/world.ts";

Deno.test({
  name: "a `device` round trip through the broker averages under 10 ms (TCP_NODELAY on the agent's socket)",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent();
      const id = await world.online();
      for (let i = 0; i < 5; i++) await world.dms.request(id, { action: "device" }); // warm-up
      const count = 40;
      const started = performance.now();
      for (let i = 0; i < count; i++) await world.dms.request(id, { action: "device" });
      const average = (performance.now() - started) / count;
      assertOk(average < 10, `average round trip ${average.toFixed(1)} ms`);
    });
  },
});
