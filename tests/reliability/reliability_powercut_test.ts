/**
 * Power cuts at every write point (tests/support/cut_points.ts on the power-cut filesystem): a burst mixing every
 * kind of write action with read-only ones, and a first enrollment. The agent's `$SNAP_DATA` and `$SNAP_COMMON`
 * are on the filesystem; mosquitto, the strict fake snapd and the identity stub are real processes or servers.
 * Each cut freezes the filesystem after its k-th operation, SIGKILLs the agent, drops every change never synced,
 * and starts the agent again on what survived. Under `deno task test` a sample of the points is cut; `deno task
 * reliability` cuts every one. docs/reliability.md gets a row per kind of write point.
 */
import { join } from "node:path";
import type { Child } from "../support/child.ts";
import {
  type BurstAction,
  fakeOutcome,
  judgeBurst,
  mixedPlan,
  mixedSnaps,
  sendBurst,
  unanswered,
} from "../support/burst.ts";
import { capturedSnaps } from "../support/fake_snapd.ts";
import {
  cutEveryPoint,
  type CutScenario,
  emptyVerdict,
  reportCuts,
  sampledPoints,
} from "../support/cut_points.ts";
import {
  enrolledAgentOnFs,
  integrity,
  type PowercutWorld,
  powercutWorld,
  wholeOrAbsent,
  writeDurably,
} from "../support/powercut_world.ts";
import { FULL } from "../support/reliability.ts";
import { sleep, until } from "../support/wait.ts";
import { E2E } from "../support/world.ts";

const DEVICE = { id: "2F0tPowerCutDevice0000000000", commonName: "power-cut-device", serial: "PEER0001" };

interface BurstState extends PowercutWorld {
  agent: Child;
  plan: BurstAction[];
}

/** A burst mixing install, remove, enable, disable, refresh, switch and setconf with read-only actions. */
const actionBurst: CutScenario<BurstState> = {
  async prepare(fs) {
    const { installed, store } = mixedSnaps();
    const setup = await enrolledAgentOnFs(fs, DEVICE, { snaps: [...capturedSnaps(), ...installed] });
    const { world } = setup;
    for (const snap of store) world.snapd.store.set(snap.name, snap);
    world.snapd.configureHooks.add("peer-b01");
    world.snapd.changeDurationMs = 300;
    return { ...setup, plan: mixedPlan(`b${crypto.randomUUID().slice(0, 6)}`) };
  },
  async run({ world, plan }) {
    await sendBurst(world.dms, DEVICE.id, plan);
    await until(() => unanswered(plan, world.dms, DEVICE.id).length === 0, "every id answered", 90_000);
  },
  async kill(state) {
    await state.agent.stop("SIGKILL");
  },
  async judge(state, cut) {
    const { world, plan } = state;
    const verdict = emptyVerdict();
    if (cut) {
      const after = world.dms.mark();
      state.agent = world.agent([], state.env);
      const back = await world.dms.health(DEVICE.id, { after, timeoutMs: 30_000 }).then(
        () => true,
        () => false,
      );
      if (!back) {
        verdict.recovered = false;
        verdict.problems.push(`the agent did not come back:\n${state.agent.tail(15)}`);
      }
    }
    const writes = plan.filter((a) => !["device", "info", "conf", "list"].includes(a.action));
    await until(
      () => unanswered(writes, world.dms, DEVICE.id).length === 0,
      "every write action answered",
      60_000,
    )
      .catch(() => {});
    // a read-only id cut between its acknowledgement and its reply is answered when the DMS asks again
    const reasked = unanswered(plan, world.dms, DEVICE.id).filter((a) => !writes.includes(a));
    if (reasked.length > 0) {
      verdict.notes!.push("a read-only id answered only when asked again");
      await sendBurst(world.dms, DEVICE.id, reasked);
      await until(
        () => unanswered(plan, world.dms, DEVICE.id).length === 0,
        "read-only ids asked again",
        30_000,
      )
        .catch(() => {});
    }
    await world.snapd.idle(30_000);
    await sleep(1000); // a window for a second reply
    const burst = await judgeBurst(plan, {
      dms: world.dms,
      deviceId: DEVICE.id,
      snapd: fakeOutcome(world.snapd),
    });
    verdict.lost = burst.lost.length;
    verdict.repeatedEffects = burst.repeatedEffects.length;
    verdict.repeatedReplies = burst.repeatedReplies.length;
    verdict.contradictory = burst.contradictions.length;
    verdict.problems.push(
      ...burst.lost.map((id) => `${id} unanswered`),
      ...burst.repeatedEffects,
      ...burst.contradictions,
    );
    await state.agent.stop("SIGTERM");
    const checked = integrity(join(state.dataDir, "agent.db"));
    if (checked !== "ok") {
      verdict.damaged++;
      verdict.problems.push(`agent.db: ${checked}`);
    }
    return verdict;
  },
  async dispose({ world }) {
    await world.stop();
  },
};

Deno.test({
  name:
    "power cut at every write point of a burst of write and read-only actions: nothing lost, no effect twice",
  ...E2E,
  async fn() {
    const { ops, rows } = await cutEveryPoint(actionBurst, sampledPoints(4), { concurrency: FULL ? 3 : 1 });
    await reportCuts(
      "a burst of 12 actions (install, remove, enable, disable, refresh, switch, setconf, reads)",
      ops,
      rows,
    );
  },
});

interface EnrollState extends PowercutWorld {
  agent?: Child;
  /** When the identity stub answered, and when the agent said it was enrolled (after the durable write). */
  answeredAt?: number;
  enrolledAt?: number;
}

/** A first enrollment: `params` set, the device registered, no `.secret` yet. */
const firstEnrollment: CutScenario<EnrollState> = {
  async prepare(fs) {
    const setup = await powercutWorld(fs);
    const state: EnrollState = setup;
    const grant = setup.world.identity.onEnrolled;
    setup.world.identity.onEnrolled = (device) => {
      state.answeredAt ??= performance.now();
      grant?.(device);
    };
    await writeDurably(
      join(setup.dataDir, "params"),
      JSON.stringify({ url: setup.world.identity.url, path: join(setup.dataDir, ".secret") }),
    );
    return state;
  },
  async run(state) {
    state.agent = state.world.agent([], state.env);
    await state.agent.waitForLine(/enrolled as device/, { timeoutMs: 60_000 });
    state.enrolledAt = performance.now();
    await state.world.online({ timeoutMs: 30_000 });
  },
  async kill(state) {
    await state.agent?.stop("SIGKILL");
  },
  async judge(state, cut) {
    const { world, dataDir } = state;
    const verdict = emptyVerdict();
    for (const file of ["params", ".secret"]) {
      const shape = await wholeOrAbsent(join(dataDir, file));
      if (shape.startsWith("half")) {
        verdict.damaged++;
        verdict.problems.push(`${file}: ${shape}`);
      }
    }
    if (!cut) {
      if (state.answeredAt && state.enrolledAt) {
        verdict.notes!.push(
          `window: ${
            (state.enrolledAt - state.answeredAt).toFixed(0)
          } ms from the identity's answer to the durable .secret`,
        );
      }
      return verdict;
    }
    const answered = world.identity.enrolledIds.length > 0;
    state.agent = world.agent([], state.env);
    const online = await world.online({ timeoutMs: 20_000 }).then(() => true, () => false);
    const secret = await wholeOrAbsent(join(dataDir, ".secret"));
    if (online) {
      const id = JSON.parse(await Deno.readTextFile(join(dataDir, ".secret"))).id;
      if (!world.identity.enrolledIds.includes(id)) {
        verdict.contradictory++;
        verdict.problems.push(`enrolled as ${id}, which the identity service never issued`);
      }
    } else if (answered && secret === "absent") {
      // inside the window: the identity service answered, the answer never became durable here
      const said = await until(
        () =>
          state.agent!.lines.some((l) => /the identity service holds an enrollment this device lost/.test(l)),
        "the lost enrollment said in one line",
        20_000,
      ).then(() => true, () => false);
      if (said) verdict.notes!.push("cut inside the enrollment window: the lost enrollment said in one line");
      else {
        verdict.recovered = false;
        verdict.problems.push(`inside the window and not said:\n${state.agent.tail(10)}`);
      }
    } else {
      verdict.recovered = false;
      verdict.lost++;
      verdict.problems.push(`not enrolled, not said why (${secret} .secret):\n${state.agent.tail(10)}`);
    }
    await state.agent.stop("SIGTERM");
    return verdict;
  },
  async dispose({ world }) {
    await world.stop();
  },
};

Deno.test({
  name:
    "power cut at every write point of a first enrollment: enrolled, able to enroll, or the lost enrollment said",
  ...E2E,
  async fn() {
    const { ops, rows } = await cutEveryPoint(firstEnrollment, sampledPoints(4), {
      concurrency: FULL ? 3 : 1,
    });
    await reportCuts("a first enrollment", ops, rows);
  },
});
