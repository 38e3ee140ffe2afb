/**
 * Flash wear and durability, measured through the power-cut filesystem under the real agent: a read-only action
 * costs no fsync, a write action at most three, and what those three guard survives a power cut — a write action
 * the broker handed over is never lost.
 */
import { assertEquals, assertOk } from "../support/assert.ts";
import { burstSnaps } from "../support/burst.ts";
import { capturedSnaps } from "../support/fake_snapd.ts";
import { mountPowercutFs, type PowercutFs } from "../support/powercut_fs.ts";
import { enrolledAgentOnFs, type PowercutWorld } from "../support/powercut_world.ts";
import { sleep, until } from "../support/wait.ts";
import type { Child } from "../support/child.ts";
import { E2E } from "../support/world.ts";

const DEVICE = { id: "2F0tFlashWearDevice000000000", commonName: "flash-wear-device", serial: "PEER0001" };

/** The agent enrolled and online, its data on a power-cut filesystem. */
async function withAgentOnFs(
  fn: (setup: PowercutWorld, fs: PowercutFs, agent: Child) => Promise<void>,
  agentEnv: Record<string, string> = {},
): Promise<void> {
  const fs = await mountPowercutFs();
  try {
    const setup = await enrolledAgentOnFs(fs, DEVICE, {
      snaps: [...capturedSnaps(), ...burstSnaps(1)],
      agentEnv,
    });
    try {
      await fn(setup, fs, setup.agent);
    } finally {
      await setup.world.stop();
    }
  } finally {
    await fs.unmount();
  }
}

/** Sends `action` and waits for its reply. */
async function ask(setup: PowercutWorld, id: string, action: string, snap = "", data = "") {
  const after = setup.world.dms.mark();
  await setup.world.dms.send(DEVICE.id, JSON.stringify({ id, action, snap, data }));
  return await setup.world.dms.response(DEVICE.id, id, { after, timeoutMs: 20_000 });
}

Deno.test({
  name: "fsyncs through the filesystem: none for read-only actions, at most three for a write action",
  ...E2E,
  async fn() {
    await withAgentOnFs(async (setup, fs) => {
      await ask(setup, "warm-up", "device"); // the first action after the start
      await fs.resetCounts();
      for (let i = 0; i < 5; i++) {
        for (
          const [action, snap] of [["device", ""], ["list", ""], ["info", "peer-b00"], ["conf", "peer-b00"]]
        ) {
          assertEquals(
            (await ask(setup, `r${i}-${action}`, action, snap, action === "conf" ? "[]" : "")).success,
            true,
          );
        }
      }
      const reads = await fs.counts();
      assertEquals(reads.totals.fsyncs, 0, `20 read-only actions: ${JSON.stringify(reads.paths)}`);
      assertOk(reads.totals.bytesWritten > 0, "their journal rows were written (unsynced)");

      await fs.resetCounts();
      for (let i = 0; i < 4; i++) {
        const action = i % 2 === 0 ? "disable" : "enable";
        const reply = await ask(setup, `w${i}`, action, "peer-b00");
        assertEquals(reply.success, true, JSON.stringify(reply));
        await setup.world.snapd.idle();
      }
      // each answer is committed (synced) before it is published, so all twelve are in once the replies are
      const writes = await fs.counts();
      assertEquals(writes.totals.fsyncs, 4 * 3, "4 write actions: acceptance, mark and answer each");
    });
  },
});

for (
  const hold of [
    { at: "before its mark (snapd's changes being read)", method: "GET", path: "/v2/changes" },
    { at: "after its mark (its request at snapd)", method: "POST", path: "/v2/snaps/peer-b00" },
  ]
) {
  Deno.test({
    name: `a write action the broker handed over survives a power cut ${hold.at}: answered once, run once`,
    ...E2E,
    async fn() {
      await withAgentOnFs(async (setup, fs, agent) => {
        const { world } = setup;
        const held = () => world.snapd.requestsTo(hold.method, hold.path).length;
        const before = held();
        world.snapd.delayNext({ method: hold.method, path: hold.path }, 2000);
        await world.dms.send(
          DEVICE.id,
          JSON.stringify({ id: "cut-1", action: "disable", snap: "peer-b00", data: "" }),
        );
        await until(() => held() > before, `${hold.method} ${hold.path} at snapd`);
        // the power goes: the action accepted and acknowledged to the broker, snapd's answer not yet back
        await fs.cut();
        await agent.stop("SIGKILL");
        await fs.restore();
        world.agent([], setup.env);
        const reply = await world.dms.response(DEVICE.id, "cut-1", { timeoutMs: 30_000 });
        await sleep(1000); // a window for a second reply
        const replies = world.dms.responses(DEVICE.id).filter((m) => m.json?.id === "cut-1").length;
        assertEquals([reply.success, replies], [true, 1], JSON.stringify(reply));
        assertEquals(world.snapd.requestsTo("POST", "/v2/snaps/peer-b00").length, 1, "run once");
      });
    },
  });
}

Deno.test({
  name: "a write action answered with an error keeps its answer across a power cut: never run afterwards",
  ...E2E,
  async fn() {
    await withAgentOnFs(async (setup, fs, agent) => {
      const { world } = setup;
      // snapd's changes cannot be read: the action is answered with that error before its mark
      world.snapd.failNext(
        { method: "GET", path: "/v2/changes" },
        { status: 500, message: "internal error" },
        1000,
      );
      const reply = await ask(setup, "failed-1", "disable", "peer-b00");
      assertEquals(reply.success, false, JSON.stringify(reply));
      await fs.cut();
      await agent.stop("SIGKILL");
      await fs.restore();
      world.snapd.clearScripted(); // snapd answers again: a resumed action would now run
      const after = world.dms.mark();
      world.agent([], setup.env);
      await world.dms.health(DEVICE.id, { after, timeoutMs: 30_000 });
      await sleep(2000); // a window for the action to run again, which it must not
      // the outbox removal is not synced: the same reply may go again, byte for byte — never another one
      const replies = world.dms.responses(DEVICE.id).filter((m) => m.json?.id === "failed-1").map((m) =>
        m.payload
      );
      assertEquals(new Set(replies).size, 1, `one answer: ${replies.join(" | ")}`);
      assertEquals(world.snapd.requestsTo("POST", "/v2/snaps/peer-b00").length, 0, "never run");
    }, { IOTAGENT_SNAPD_CONFLICT_TIMEOUT: "1s" });
  },
});
