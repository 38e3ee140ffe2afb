/**
 * systemd's watchdog, with a datagram socket standing in for systemd: both daemons say READY=1 once serving and
 * WATCHDOG=1 at half of WATCHDOG_USEC; a wedged event loop stops the pings (systemd would restart the daemon); a
 * clean stop says STOPPING=1; without NOTIFY_SOCKET nothing is sent.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "../support/assert.ts";
import { startAgent } from "../support/agent_process.ts";
import { FakeSnapd } from "../support/fake_snapd.ts";
import { until } from "../support/wait.ts";
import { E2E, withWorld } from "../support/world.ts";

/** A stand-in for systemd's notification socket: every datagram with its arrival time. */
function fakeSystemd(
  dir: string,
): { path: string; received: { at: number; state: string }[]; close(): void } {
  const path = join(dir, "notify.sock");
  const socket = Deno.listenDatagram({ transport: "unixpacket", path });
  const received: { at: number; state: string }[] = [];
  (async () => {
    for (;;) {
      const [data] = await socket.receive();
      received.push({ at: performance.now(), state: new TextDecoder().decode(data) });
    }
  })().catch(() => {});
  return { path, received, close: () => socket.close() };
}

Deno.test({
  name:
    "the agent daemon: READY=1, WATCHDOG=1 at half the deadline, none while its loop is wedged, STOPPING=1",
  ...E2E,
  async fn() {
    await withWorld(async (world) => {
      const systemd = fakeSystemd(world.dir);
      try {
        const agent = world.agent([], {
          NOTIFY_SOCKET: systemd.path,
          WATCHDOG_USEC: "2000000",
          IOTAGENT_FAILPOINT: "wedge:journalled",
        });
        const id = await world.online();
        await until(
          () => systemd.received.filter((r) => r.state === "WATCHDOG=1").length >= 3,
          "three pings",
        );
        assertEquals(systemd.received[0].state, "READY=1");
        const pings = () => systemd.received.filter((r) => r.state === "WATCHDOG=1").map((r) => r.at);
        const steady = pings();
        assertOk(steady.slice(1).every((at, i) => at - steady[i] < 1500), `every ~1 s: ${steady}`);
        // an action wedges the event loop for 5 s: no ping in that time, pings again after
        const before = pings().length;
        await world.dms.request(id, { action: "device" }, 30_000);
        await until(() => pings().length >= before + 2, "pings after the wedge");
        const times = pings();
        const longest = Math.max(...times.slice(1).map((at, i) => at - times[i]));
        assertOk(longest >= 4500, `a gap of ${longest} ms while the loop was wedged`);
        await agent.stop();
        await until(() => systemd.received.at(-1)?.state === "STOPPING=1", "STOPPING=1");
        assertEquals([...Deno.readDirSync(world.runtimeDir)].filter((e) => e.name.startsWith("notify-")), []);
      } finally {
        systemd.close();
      }
    });
  },
});

Deno.test({
  name: "the watchdog daemon notifies too; without NOTIFY_SOCKET nothing is sent",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const snapd = FakeSnapd.start();
    const systemd = fakeSystemd(dir);
    const env = {
      SNAP_DATA: dir,
      SNAP_COMMON: dir,
      XDG_RUNTIME_DIR: join(dir, "run"),
      IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
    };
    try {
      const watched = startAgent(["watchdog"], {
        ...env,
        NOTIFY_SOCKET: systemd.path,
        WATCHDOG_USEC: "2000000",
      });
      await until(() => systemd.received.filter((r) => r.state === "WATCHDOG=1").length >= 2, "two pings");
      assertEquals(systemd.received[0].state, "READY=1");
      await watched.stop();
      const count = systemd.received.length;
      const unwatched = startAgent(["watchdog"], env);
      await unwatched.waitForLine(/watchdog started/);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await unwatched.stop();
      assertEquals(systemd.received.length, count, "nothing without NOTIFY_SOCKET");
    } finally {
      systemd.close();
      await snapd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
