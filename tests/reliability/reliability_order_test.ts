/**
 * Per-snap order across a kill: a burst of alternating `disable`/`enable` over ten snaps (tests/support/burst.ts),
 * the strict fake snapd's changes taking 1.2 s each, the real agent SIGKILLed after the DMS got k replies — some
 * change then still running — and started again. Every snap must end as the DMS last asked, every id be answered
 * consistently with what snapd did, no effect done twice. Under `deno task test` two points of the burst are cut;
 * `deno task reliability` kills after every reply count from 0 to the burst's length − 1.
 */
import { assertEquals } from "../support/assert.ts";
import { burstPlan, burstSnaps, fakeOutcome, judgeBurst, sendBurst } from "../support/burst.ts";
import { capturedSnaps } from "../support/fake_snapd.ts";
import { FULL, trial } from "../support/reliability.ts";
import { sleep, until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";

const SNAP_NAMES = burstSnaps(10).map((s) => s.name);
const PLAN_LENGTH = burstPlan(SNAP_NAMES, "x").length;
/** Reply counts after which the agent is killed. */
const KILL_AFTER = FULL ? Array.from({ length: PLAN_LENGTH }, (_, k) => k) : [3, 13];

Deno.test({
  name:
    "a burst of alternating actions over ten snaps, SIGKILLed mid-burst: every snap ends as the DMS last asked",
  ...E2E,
  async fn() {
    const fault = {
      area: "order",
      fault: `SIGKILL after k of ${PLAN_LENGTH} replies (k = ${
        FULL ? `0…${PLAN_LENGTH - 1}` : KILL_AFTER.join(", ")
      }), changes still running; 10 snaps, 2–3 alternating actions each`,
      note:
        "lost: ids unanswered; contradictory: a reply or a snap's end state against snapd's; one try per k",
    };
    await trial(fault, KILL_AFTER.length, async (i, counts) => {
      const k = KILL_AFTER[i];
      await withWorld(async (world) => {
        world.snapd.changeDurationMs = 1200;
        const first = world.agent();
        const deviceId = await world.online();
        const plan = burstPlan(SNAP_NAMES, `k${k}`);
        await sendBurst(world.dms, deviceId, plan);
        await until(() => world.dms.responses(deviceId).length >= k, `${k} replies`, 60_000);
        await first.stop("SIGKILL");
        const second = world.agent();
        const answered = () => {
          const ids = new Set(world.dms.responses(deviceId).map((m) => m.json?.id));
          return plan.every((a) => ids.has(a.id));
        };
        await until(answered, "every id of the burst answered", 90_000).catch(() => {});
        await world.snapd.idle(60_000);
        await sleep(1000); // a window for a second reply
        const verdict = await judgeBurst(plan, { dms: world.dms, deviceId, snapd: fakeOutcome(world.snapd) });
        counts.lost += verdict.lost.length;
        counts.repeatedEffects += verdict.repeatedEffects.length;
        counts.repeatedReplies += verdict.repeatedReplies.length;
        counts.contradictory += verdict.contradictions.length;
        if (verdict.lost.length === 0) counts.recovered++;
        assertEquals(
          { lost: verdict.lost, contradictions: verdict.contradictions, repeated: verdict.repeatedEffects },
          { lost: [], contradictions: [], repeated: [] },
          `killed after ${k} replies\n${second.tail(20)}`,
        );
      }, { snaps: [...capturedSnaps(), ...burstSnaps(10)] });
    });
  },
});
