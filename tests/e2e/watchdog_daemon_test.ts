/** `agent watchdog` as the snap's second daemon: the real process, the fake snapd, no enrollment needed. */
import { join } from "node:path";
import { assertEquals, assertOk } from "../support/assert.ts";
import { startAgent } from "../support/agent_process.ts";
import { FakeSnapd } from "../support/fake_snapd.ts";
import { until } from "../support/wait.ts";
import { E2E } from "../support/world.ts";

Deno.test({
  name:
    "the watchdog daemon logs changes and writes a complete report even when killed right after writing it",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const snapd = FakeSnapd.start();
    try {
      snapd.addChange("install-snap", 'Install "slow" snap', "Doing", { "snap-names": ["slow"] });
      snapd.addChange("remove-snap", 'Remove "old" snap', "Done");
      const watchdog = startAgent(["watchdog"], {
        SNAP_DATA: dir,
        SNAP_COMMON: dir,
        IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
        IOTAGENT_WATCHDOG_CHANGE_TIMEOUT: "1s",
        IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
        IOTAGENT_WATCHDOG_REBOOT: "false",
      });
      await watchdog.waitForLine(/snaplogger: 2 change\(s\) in the last 24 h/);
      await watchdog.waitForLine(/known change \d+ install-snap "Install "slow" snap" Doing/);
      await watchdog.waitForLine(/report written to .*snap_changes_\d+\.json; not rebooting/);
      await watchdog.stop("SIGKILL");
      const reports = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("snap_changes_"));
      assertEquals(reports.length, 1);
      const report = JSON.parse(await Deno.readTextFile(join(dir, reports[0].name)));
      assertEquals(report.map((c: { summary: string }) => c.summary), [
        'Install "slow" snap',
        'Remove "old" snap',
      ]);
      assertOk(await Deno.stat(join(dir, "changes.db")), "the change database is in $SNAP_DATA");
    } finally {
      await snapd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a 1000 h interval is a long wait, not a busy loop: the watchdog daemon reads snapd's changes twice, then idles",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const snapd = FakeSnapd.start();
    try {
      const watchdog = startAgent([
        "watchdog",
        "--snaplogger.duration.between.checks=1000h",
        "--watchdog.check.interval=1000h",
      ], {
        SNAP_DATA: dir,
        SNAP_COMMON: dir,
        IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
        IOTAGENT_WATCHDOG_CHECK_INTERVALL: "1m", // a typo: reported once, ignored
      });
      await watchdog.waitForLine(/watchdog started/);
      await until(() => snapd.requestsTo("GET", "/v2/changes").length >= 2, "the first two reads", 10_000);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // one read by the change logger at start, one by the watchdog's first check; the next ones in 1000 h
      assertEquals(snapd.requestsTo("GET", "/v2/changes").length, 2);
      assertEquals(
        watchdog.matching(
          /WARN .*unknown environment variable IOTAGENT_WATCHDOG_CHECK_INTERVALL ignored \(did you mean IOTAGENT_WATCHDOG_CHECK_INTERVAL\?\)/,
        ).length,
        1,
      );
      assertEquals((await watchdog.stop()).code, 0);
    } finally {
      await snapd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a restart of the watchdog daemon keeps counting a hung change from its first sighting (same boot)",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const snapd = FakeSnapd.start();
    try {
      snapd.addChange("install-snap", 'Install "slow" snap', "Doing", { "snap-names": ["slow"] });
      const env = {
        SNAP_DATA: dir,
        SNAP_COMMON: dir,
        IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
        IOTAGENT_WATCHDOG_CHANGE_TIMEOUT: "8s",
        IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
        IOTAGENT_WATCHDOG_REBOOT: "false",
        IOTAGENT_LOG_LEVEL: "debug",
      };
      const first = startAgent(["watchdog"], env);
      await first.waitForLine(/change \d+ is in progress: hung if still so after 8s/);
      const firstSeen = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      assertEquals(first.matching(/report written/), [], "not hung after 5 s");
      assertEquals((await first.stop()).code, 0);
      const second = startAgent(["watchdog"], env);
      await second.waitForLine(/report written to .*snap_changes_\d+\.json; not rebooting/, {
        timeoutMs: 15_000,
      });
      const reportedAfter = Date.now() - firstSeen;
      // counted from the first sighting: about 8 s after it; counting afresh would take 8 s after the restart
      assertOk(reportedAfter < 11_500, `reported ${reportedAfter} ms after the first sighting`);
      assertEquals(
        second.matching(/is in progress: hung if still so/),
        [],
        "the sighting came from the store",
      );
      await second.stop();
    } finally {
      await snapd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
