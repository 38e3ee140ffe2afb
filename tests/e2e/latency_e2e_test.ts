/**
 * A functional check of the reply path through the test broker (mosquitto with `set_tcp_nodelay true`, as DMS
 * brokers run): without TCP_NODELAY on the agent's socket, Nagle's algorithm meets the broker's delayed ACK and
 * every reply waits about 40 ms. What is measured is which side of that step the replies fall on — the median,
 * which a busy machine's outliers do not move, against half the stall — not how fast they are: the figures
 * themselves belong to `deno task bench`.
 */
import { assertOk } from "../support/assert.ts";
import { E2E, withWorld } from "../support/world.ts";

/** The delayed-ACK stall each reply pays without TCP_NODELAY, in ms. */
const STALL_MS = 40;

Deno.test({
  name: "`device` round trips through the broker do not pay the 40 ms delayed-ACK stall (TCP_NODELAY)",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      world.agent();
      const id = await world.online();
      for (let i = 0; i < 5; i++) await world.dms.request(id, { action: "device" }); // warm-up
      const rounds: number[] = [];
      for (let i = 0; i < 41; i++) {
        const started = performance.now();
        await world.dms.request(id, { action: "device" });
        rounds.push(performance.now() - started);
      }
      rounds.sort((a, b) => a - b);
      const median = rounds[Math.floor(rounds.length / 2)];
      // a stalled reply takes at least the stall; a loaded 2-core machine measured 11 ms on average without one
      assertOk(
        median < STALL_MS / 2,
        `median round trip ${median.toFixed(1)} ms (fastest ${
          rounds[0].toFixed(1)
        } ms): replies wait for the ` +
          `delayed ACK`,
      );
    });
  },
});
