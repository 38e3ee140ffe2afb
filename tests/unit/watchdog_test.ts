/** The change store, the change logger and the watchdog, with the fake snapd and an injected clock. */
import { systemClock } from "../../lib/clock.ts";
import { assertEquals, assertMatch, assertOk } from "../support/assert.ts";
import { ChangeStore } from "../../lib/changes/store.ts";
import { ChangeLogger } from "../../lib/changes/logger.ts";
import { reportPath, Watchdog } from "../../lib/watchdog.ts";
import type { Clock } from "../../lib/clock.ts";
import { createLogger, type LogLevel, MemorySink } from "../../lib/log.ts";
import type { SnapdChange } from "../../lib/snapd/types.ts";
import { FakeSnapd } from "../support/fake_snapd.ts";
import { trial } from "../support/reliability.ts";
import { fixtureResult } from "../support/fixtures.ts";
import { openSnapd } from "../../lib/adapters/snapd_http.ts";

const HOUR = 3_600_000;

/**
 * A clock at a settable time; sleeping is not used by these tests. `set` moves both clocks (time passing);
 * `jump` moves only the wall clock (NTP setting it).
 */
function manualClock(start: number): Clock & { set(ms: number): void; jump(ms: number): void } {
  let now = start;
  let monotonic = 0;
  return {
    now: () => now,
    monotonic: () => monotonic,
    set: (ms: number) => {
      monotonic += ms - now;
      now = ms;
    },
    jump: (ms: number) => (now = ms),
    sleep: () => Promise.resolve(),
  };
}

interface Env {
  snapd: FakeSnapd;
  store: ChangeStore;
  logs: MemorySink;
  clock: ReturnType<typeof manualClock>;
  dir: string;
  reboots: string[];
  /** The current boot's id; change it to simulate a reboot. */
  bootId: string;
  changeLogger(options?: { level?: LogLevel; keep?: number; logStartup?: boolean }): ChangeLogger;
  watchdog(options?: { reboot?: boolean }): Watchdog;
  reopen(): Promise<void>;
}

async function withEnv(fn: (env: Env) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const snapd = FakeSnapd.start();
  const client = openSnapd({ clock: systemClock, socketPath: snapd.socketPath, timeoutMs: 5000 });
  const logs = new MemorySink();
  const log = createLogger("test", { level: "debug", sink: logs });
  const reboots: string[] = [];
  const env: Env = {
    snapd,
    store: await ChangeStore.open(`${dir}/changes.db`, log),
    logs,
    clock: manualClock(Date.now()),
    dir,
    reboots,
    bootId: "boot-1",
    changeLogger: (options = {}) =>
      new ChangeLogger({
        store: env.store,
        snapd: client,
        log: log.child("snaplogger", options.level ?? "info"),
        clock: env.clock,
        keep: options.keep ?? 1000,
        logStartup: options.logStartup ?? true,
      }),
    watchdog: (options = {}) =>
      new Watchdog({
        store: env.store,
        snapd: client,
        power: { reboot: (reason) => (reboots.push(reason), Promise.resolve()) },
        log: log.child("watchdog"),
        clock: env.clock,
        boot: { id: env.bootId, uptimeMs: () => env.clock.monotonic() },
        reportDir: dir,
        timeoutMs: HOUR,
        reboot: options.reboot ?? true,
      }),
    async reopen() {
      env.store.close();
      env.store = await ChangeStore.open(`${dir}/changes.db`, log);
    },
  };
  try {
    await fn(env);
  } finally {
    env.store.close();
    client.close();
    await snapd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A change in snapd's shape with the given id, status and spawn time. */
function change(id: string, status: string, spawnMs: number): SnapdChange {
  const ready = ["Done", "Undone", "Hold", "Error"].includes(status);
  return {
    id,
    kind: "install-snap",
    summary: `Install "snap-${id}" snap`,
    status,
    tasks: [],
    ready,
    "spawn-time": new Date(spawnMs).toISOString(),
    ...(ready ? { "ready-time": new Date(spawnMs + 1000).toISOString() } : {}),
    ...(status === "Error" ? { err: "cannot perform the following tasks:\n- boom" } : {}),
  };
}

Deno.test("new and changed changes are stored and logged once each", async () => {
  await withEnv(async ({ snapd, store, logs, clock, changeLogger }) => {
    const logger = changeLogger();
    await logger.startup();
    const now = clock.now();
    snapd.changes = [change("1", "Doing", now)];
    await logger.check();
    await logger.check();
    snapd.changes = [change("1", "Done", now)];
    await logger.check();
    await logger.check();
    assertEquals(
      logs.records({ category: "test.snaplogger", message: /^new change 1 install-snap/ }).length,
      1,
    );
    assertEquals(
      logs.records({
        category: "test.snaplogger",
        message: /^Doing -> change 1 .* Done \(spawned .*, ready .*\)$/,
      })
        .length,
      1,
    );
    assertEquals(store.count(), 1);
  });
});

Deno.test("the captured changes are stored with their tasks; an Error change is logged with its error", async () => {
  await withEnv(async ({ snapd, store, logs, changeLogger }) => {
    const logger = changeLogger();
    await logger.startup();
    snapd.changes = fixtureResult<SnapdChange[]>("62");
    await logger.check();
    assertEquals(store.count(), snapd.changes.length);
    const failed = logs.records({
      category: "test.snaplogger",
      message: /^new change \d+ .* Error .*; error: cannot perform the following tasks:/,
    });
    assertOk(failed.length >= 1, "an Error change is logged with its error on one line");
    assertOk(logs.lines.every((line) => !line.includes("\n")), "one line per change");
  });
});

Deno.test("retention keeps the newest 1000 of 10,000 changes by spawn time", async () => {
  await withEnv(async ({ snapd, store, clock, changeLogger }) => {
    const base = clock.now() - 20_000 * 1000;
    snapd.changes = Array.from({ length: 10_000 }, (_, i) => change(String(i + 1), "Done", base + i * 1000));
    await changeLogger({ keep: 1000 }).check();
    assertEquals(store.count(), 1000);
    const oldest = store.spawnedSince(0)[0];
    assertEquals(oldest.id, "9001");
  });
});

Deno.test("start-up logging of the last 24 h: on and off", async () => {
  for (const logStartup of [true, false]) {
    await withEnv(async ({ snapd, logs, clock, changeLogger }) => {
      const now = clock.now();
      snapd.changes = [
        change("1", "Done", now - 30 * HOUR),
        change("2", "Done", now - 2 * HOUR),
        change("3", "Doing", now),
      ];
      await changeLogger({ logStartup }).startup();
      const known = logs.records({ category: "test.snaplogger", message: /^known change/ });
      assertEquals(known.map((r) => r.message.match(/change (\d+)/)![1]), logStartup ? ["2", "3"] : []);
      assertEquals(
        logs.records({ category: "test.snaplogger", message: /^new change/ }).length,
        0,
        "the backlog is not logged as new",
      );
    });
  }
});

Deno.test("snaplogger.log.level=warn stores but does not log", async () => {
  await withEnv(async ({ snapd, store, logs, clock, changeLogger }) => {
    const logger = changeLogger({ level: "warn" });
    await logger.startup();
    snapd.changes = [change("1", "Doing", clock.now())];
    await logger.check();
    assertEquals(store.count(), 1);
    assertEquals(logs.records({ category: "test.snaplogger" }), []);
  });
});

Deno.test("a hung change: report with every change, then exactly one reboot", async () => {
  await withEnv(async ({ snapd, clock, dir, reboots, watchdog }) => {
    const now = clock.now();
    snapd.changes = [
      change("7", "Doing", now),
      change("8", "Done", now - 3 * HOUR),
      change("9", "Error", now - 3 * HOUR),
    ];
    const dog = watchdog();
    assertEquals((await dog.check()).kind, "healthy");
    clock.set(now + HOUR + 1);
    const verdict = await dog.check();
    assertEquals(verdict, { kind: "rebooted", changeId: "7", report: reportPath(dir, "7") });
    assertEquals(reboots, ["snap change 7 hung"]);
    const report = JSON.parse(await Deno.readTextFile(reportPath(dir, "7")));
    assertEquals(report, snapd.changes, "every known change, as snapd returns them");
    assertMatch(await Deno.readTextFile(reportPath(dir, "7")), /^\[\n {2}\{\n {4}"id": "7"/);
  });
});

Deno.test("after the reboot the same hung change is aborted through snapd, not rebooted again", async () => {
  await withEnv(async (env) => {
    const { snapd, clock, reboots, watchdog, reopen, logs } = env;
    const hung = snapd.addChange("install-snap", 'Install "stuck" snap', "Doing", {
      "snap-names": ["stuck"],
    });
    const first = watchdog();
    await first.check(); // sees it running
    clock.set(clock.now() + 2 * HOUR);
    assertEquals((await first.check()).kind, "rebooted");
    await reopen(); // the device rebooted; the watchdog starts again with the same store
    env.bootId = "boot-2";
    const second = watchdog();
    assertEquals((await second.check()).kind, "healthy", "after a reboot it measures afresh");
    clock.set(clock.now() + HOUR);
    const verdict = await second.check();
    assertEquals(verdict, { kind: "aborted", changeId: hung.id });
    assertEquals(reboots.length, 1);
    assertEquals(JSON.parse(snapd.requestsTo("POST", `/v2/changes/${hung.id}`)[0].body), { action: "abort" });
    assertEquals(
      logs.records({
        level: "error",
        message: /already caused a reboot: aborting it instead of rebooting again$/,
      })
        .length,
      1,
    );
    assertEquals((await second.check()).kind, "healthy", "an aborted change does not act twice");
  });
});

Deno.test("Done, Error and Undone changes never trigger, however old; a vanished change is fine", async () => {
  await withEnv(async ({ snapd, clock, reboots, watchdog }) => {
    const old = clock.now() - 100 * HOUR;
    snapd.changes = [change("1", "Done", old), change("2", "Error", old), change("3", "Undone", old)];
    const dog = watchdog();
    assertEquals((await dog.check()).kind, "healthy");
    snapd.changes = [change("4", "Doing", clock.now() - 10 * 60_000)];
    assertEquals((await dog.check()).kind, "healthy");
    snapd.changes = []; // change 4 vanished from snapd
    clock.set(clock.now() + 2 * HOUR);
    assertEquals((await dog.check()).kind, "healthy");
    assertEquals(reboots, []);
  });
});

Deno.test("watchdog.reboot=false reports a hung change once and never aborts it, across restarts and reboots", async () => {
  await withEnv(async (env) => {
    const { snapd, clock, dir, reboots, watchdog, logs, reopen } = env;
    const hung = snapd.addChange("install-snap", 'Install "stuck" snap', "Doing", {
      "snap-names": ["stuck"],
    });
    const dog = watchdog({ reboot: false });
    assertEquals((await dog.check()).kind, "healthy", "not seen running for an hour yet");
    clock.set(clock.now() + HOUR);
    assertEquals(await dog.check(), {
      kind: "reported",
      changeId: hung.id,
      report: reportPath(dir, hung.id),
    });
    for (let i = 0; i < 3; i++) {
      clock.set(clock.now() + HOUR);
      assertEquals(await dog.check(), { kind: "hung", changeId: hung.id });
    }
    await reopen(); // the daemon restarted (a settings change)
    assertEquals(await watchdog({ reboot: false }).check(), { kind: "hung", changeId: hung.id });
    await reopen(); // the operator rebooted the device
    env.bootId = "boot-2";
    const afterReboot = watchdog({ reboot: false });
    await afterReboot.check();
    clock.set(clock.now() + 2 * HOUR);
    assertEquals(await afterReboot.check(), { kind: "hung", changeId: hung.id });
    assertEquals(reboots, []);
    assertEquals(snapd.requestsTo("POST", `/v2/changes/${hung.id}`), [], "never aborted");
    assertEquals(
      logs.records({ message: /not rebooting \(watchdog\.reboot=false\)$/ }).length,
      1,
      "reported once",
    );
    assertEquals(logs.records({ message: /already caused a reboot/ }), []);
  });
});

Deno.test("a restart of the watchdog within one boot keeps the count; a new boot starts afresh", async () => {
  await withEnv(async (env) => {
    const { snapd, clock, reboots, watchdog, reopen } = env;
    snapd.addChange("install-snap", 'Install "stuck" snap', "Doing", { "snap-names": ["stuck"] });
    assertEquals((await watchdog().check()).kind, "healthy", "first seen");
    clock.set(clock.now() + 50 * 60_000);
    await reopen(); // restarted after 50 minutes (a refresh of the snap)
    const restarted = watchdog();
    assertEquals((await restarted.check()).kind, "healthy", "50 minutes seen running");
    clock.set(clock.now() + 10 * 60_000);
    assertEquals(
      (await restarted.check()).kind,
      "rebooted",
      "an hour since the first sighting, not since the restart",
    );
    assertEquals(reboots.length, 1);

    await reopen();
    env.bootId = "boot-2"; // a new boot (the reboot did not cure it): counted from its first sighting in this boot
    const booted = watchdog();
    assertEquals((await booted.check()).kind, "healthy");
    clock.set(clock.now() + HOUR - 60_000);
    assertEquals((await booted.check()).kind, "healthy", "59 minutes into the new boot");
    clock.set(clock.now() + 60_000);
    assertEquals((await booted.check()).kind, "aborted");
  });
});

Deno.test("a reboot that was asked for but did not happen is asked for again, never taken for one that did", async () => {
  await withEnv(async ({ snapd, clock, reboots, watchdog, reopen }) => {
    const hung = snapd.addChange("install-snap", 'Install "stuck" snap', "Doing", {
      "snap-names": ["stuck"],
    });
    const dog = watchdog();
    await dog.check();
    clock.set(clock.now() + HOUR);
    assertEquals((await dog.check()).kind, "rebooted");
    await reopen(); // the daemon restarted, but the device did not reboot (same boot)
    clock.set(clock.now() + 60_000);
    assertEquals((await watchdog().check()).kind, "rebooted", "asked again");
    assertEquals(reboots.length, 2);
    assertEquals(snapd.requestsTo("POST", `/v2/changes/${hung.id}`), []);
  });
});

Deno.test("a corrupt change database is moved aside and recreated; the store keeps working", async () => {
  const dir = await Deno.makeTempDir();
  const logs = new MemorySink();
  try {
    await Deno.writeTextFile(`${dir}/changes.db`, "garbage ".repeat(1000));
    const store = await ChangeStore.open(`${dir}/changes.db`, createLogger("test", { sink: logs }));
    store.upsert(change("1", "Done", Date.now()), Date.now());
    assertEquals([store.count(), store.integrity()], [1, "ok"]);
    store.close();
    assertEquals(
      [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("changes.db.corrupt-")).length,
      1,
    );
    assertEquals(logs.records({ level: "error", message: /changes\.db is unusable/ }).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (
  const [name, jump] of [
    ["decades forward (a device without an RTC booted in 1970, then NTP)", 50 * 365 * 24 * HOUR],
    ["one day forward", 24 * HOUR],
    ["one day back", -24 * HOUR],
  ] as const
) {
  Deno.test(`a wall clock jump ${name} while a change runs never triggers; an hour seen running does`, async () => {
    const fault = {
      area: "clock",
      fault: `wall clock jump ${name} while a change runs (watchdog)`,
      note: "lost: a reboot before an hour seen running; recovered: the reboot once an hour was seen",
    };
    await trial(fault, 1, async (_i, counts) => {
      await withEnv(async ({ snapd, clock, reboots, watchdog }) => {
        snapd.changes = [change("7", "Doing", clock.now())];
        const dog = watchdog();
        const early = [await dog.check()];
        clock.jump(clock.now() + jump);
        early.push(await dog.check()); // the jump is not time the change ran
        clock.set(clock.now() + HOUR - 60_000);
        early.push(await dog.check()); // 59 minutes seen running
        clock.set(clock.now() + 60_000);
        const onTime = await dog.check(); // an hour seen running
        if (early.some((verdict) => verdict.kind !== "healthy")) counts.lost++;
        else if (onTime.kind === "rebooted") counts.recovered++;
        assertEquals(early.map((v) => v.kind), ["healthy", "healthy", "healthy"]);
        assertEquals([onTime.kind, reboots.length], ["rebooted", 1]);
      });
    });
  });
}

Deno.test("booted in 1970, the clock set to now: an old spawn time does not make a running change hung", async () => {
  await withEnv(async ({ snapd, clock, reboots, watchdog }) => {
    clock.jump(Date.UTC(1970, 0, 1, 0, 5)); // no RTC: the change was spawned "in 1970"
    snapd.changes = [change("3", "Doing", clock.now())];
    const dog = watchdog();
    assertEquals((await dog.check()).kind, "healthy");
    clock.jump(Date.UTC(2026, 10, 29)); // NTP
    assertEquals((await dog.check()).kind, "healthy");
    assertEquals(reboots, []);
  });
});
