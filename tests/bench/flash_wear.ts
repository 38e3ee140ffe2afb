/**
 * Flash wear, for `deno task bench`: fsyncs and bytes written per action kind and per idle hour, counted by the
 * power-cut filesystem under the real agent (its `$SNAP_DATA` and `$SNAP_COMMON` there, its status files on the
 * ordinary disk as on a device's tmpfs). SD cards and eMMC wear with every write; an fsync forces one.
 */
import { burstSnaps } from "../support/burst.ts";
import { capturedSnaps } from "../support/fake_snapd.ts";
import { mountPowercutFs, type PowercutFs } from "../support/powercut_fs.ts";
import { enrolledAgentOnFs, type PowercutWorld } from "../support/powercut_world.ts";
import { sleep } from "../support/wait.ts";

/** Adds one row to the bench's table: what, this agent's figure, the target, met or not. */
export type FlashRow = (measure: string, ours: string, target: string, met: boolean) => void;

const DEVICE = { id: "2F0tBenchFlashDevice00000000", commonName: "bench-flash-device", serial: "PEER0001" };

/** What one kind of action costs: fsyncs and bytes written per action. */
interface Cost {
  fsyncs: number;
  bytes: number;
}

/** Measures `perKind` actions of each kind and `idleSeconds` of idling; adds the rows. */
export async function flashWearRows(
  row: FlashRow,
  { perKind, idleSeconds }: { perKind: number; idleSeconds: number },
): Promise<void> {
  const fs = await mountPowercutFs();
  try {
    const setup = await enrolledAgentOnFs(fs, DEVICE, { snaps: [...capturedSnaps(), ...burstSnaps(1)] });
    try {
      await ask(setup, "warm-up", "device", "");
      for (
        const [action, snap, data] of [["device", ""], ["list", ""], ["info", "peer-b00"], [
          "conf",
          "peer-b00",
          "[]",
        ]]
      ) {
        const cost = await costOf(fs, perKind, (i) => ask(setup, `${action}-${i}`, action, snap, data));
        row(`fsyncs / bytes written per \`${action}\``, show(cost), "0 fsyncs", cost.fsyncs === 0);
      }
      const write = await costOf(fs, perKind, async (i) => {
        await ask(setup, `w-${i}`, i % 2 === 0 ? "disable" : "enable", "peer-b00");
        await setup.world.snapd.idle();
      });
      row(
        "fsyncs / bytes written per write action (`disable`/`enable`)",
        show(write),
        "≤ 3 fsyncs",
        write.fsyncs <= 3,
      );
      await fs.resetCounts();
      await sleep(idleSeconds * 1000);
      const idle = (await fs.counts()).totals;
      const perHour = (n: number) => Math.round(n * 3600 / idleSeconds);
      row(
        `bytes written / fsyncs per idle hour (measured over ${idleSeconds} s, status files on tmpfs)`,
        `${perHour(idle.bytesWritten)} B / ${perHour(idle.fsyncs)}`,
        "0 bytes",
        idle.bytesWritten === 0,
      );
    } finally {
      await setup.world.stop();
    }
  } finally {
    await fs.unmount();
  }
}

/** Runs `count` actions and divides what the filesystem counted by them. */
async function costOf(fs: PowercutFs, count: number, act: (i: number) => Promise<unknown>): Promise<Cost> {
  await fs.resetCounts();
  for (let i = 0; i < count; i++) await act(i);
  await sleep(200); // the outbox removal after the last PUBACK
  const { totals } = await fs.counts();
  return { fsyncs: totals.fsyncs / count, bytes: totals.bytesWritten / count };
}

const show = ({ fsyncs, bytes }: Cost) => `${fsyncs.toFixed(2)} / ${(bytes / 1024).toFixed(1)} KiB`;

async function ask(setup: PowercutWorld, id: string, action: string, snap: string, data = "") {
  const after = setup.world.dms.mark();
  await setup.world.dms.send(DEVICE.id, JSON.stringify({ id, action, snap, data }));
  return await setup.world.dms.response(DEVICE.id, id, { after, timeoutMs: 20_000 });
}
