/**
 * Corrupt files: every file the agent keeps — `.secret`, `params`, `agent.db`, `changes.db`, the status files —
 * truncated, emptied, or overwritten with random bytes: it is moved aside (never silently overwritten), reported
 * once, and the agent carries on (a fresh database, enrollment attempted again, waiting for a URL, the status file
 * rewritten).
 */
import { join } from "node:path";
import { ChangeStore } from "../../lib/changes/store.ts";
import { ActionJournal } from "../../lib/dms/journal.ts";
import { CredentialsStore } from "../../lib/identity/credentials.ts";
import { ParamsFile } from "../../lib/identity/params.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { resolvePaths } from "../../lib/paths.ts";
import { openAgentDb } from "../../lib/store/agent_db.ts";
import { assertEquals, assertOk } from "../support/assert.ts";
import { goParams, goSecret } from "../support/go_files.ts";
import { TestCA } from "../support/pki.ts";
import { record, trial } from "../support/reliability.ts";
import { runAgent, startAgent } from "../support/agent_process.ts";
import { FakeSnapd } from "../support/fake_snapd.ts";
import { until } from "../support/wait.ts";
import { E2E } from "../support/world.ts";

type Corruption = "truncated" | "zero-length" | "random bytes";
const CORRUPTIONS: Corruption[] = ["truncated", "zero-length", "random bytes"];

function corrupt(good: Uint8Array, how: Corruption): Uint8Array {
  if (how === "zero-length") return new Uint8Array();
  if (how === "truncated") return good.slice(0, Math.max(1, Math.floor(good.length / 3)));
  return crypto.getRandomValues(new Uint8Array(Math.max(64, good.length)));
}

interface Case {
  file: string;
  /** Writes a good file, returns its bytes. */
  good(dir: string): Promise<Uint8Array>;
  /** Opens it as the agent does; returns true when the agent can carry on. */
  open(dir: string, log: ReturnType<typeof createLogger>): Promise<boolean>;
  /** Whether a corruption of this kind must be moved aside (an empty sqlite file is a valid empty database). */
  movedAside(how: Corruption): boolean;
}

const ca = TestCA.create();
const client = ca.issue("device");
const organization = ca.issue("Org", { isCA: true });
const paths = (dir: string) =>
  resolvePaths({ SNAP_DATA: dir, SNAP_COMMON: dir, XDG_RUNTIME_DIR: join(dir, "run") }, true);

const CASES: Case[] = [
  {
    file: ".secret",
    async good(dir) {
      await Deno.writeTextFile(
        join(dir, ".secret"),
        goSecret({ id: "d1", client, organization, mqttUrl: "localhost", mqttPort: "8883" }),
      );
      return await Deno.readFile(join(dir, ".secret"));
    },
    async open(dir, log) {
      const store = new CredentialsStore(paths(dir), log);
      return (await store.load()) === undefined; // gone: the agent enrolls again
    },
    movedAside: () => true,
  },
  {
    file: "params",
    async good(dir) {
      await Deno.writeTextFile(
        join(dir, "params"),
        goParams("https://identity.example.com", join(dir, ".secret")),
      );
      return await Deno.readFile(join(dir, "params"));
    },
    async open(dir, log) {
      return (await new ParamsFile(paths(dir), log).read()) === undefined; // the agent waits for a URL
    },
    movedAside: () => true,
  },
  {
    file: "agent.db",
    async good(dir) {
      const db = await openAgentDb(join(dir, "agent.db"), createLogger("setup", { sink: new MemorySink() }));
      const journal = new ActionJournal(db);
      for (let i = 0; i < 200; i++) journal.accept({ id: `a${i}`, action: "list", snap: "", data: "" }, i);
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      db.close();
      return await Deno.readFile(join(dir, "agent.db"));
    },
    async open(dir, log) {
      const db = await openAgentDb(join(dir, "agent.db"), log);
      new ActionJournal(db).accept({ id: "after", action: "list", snap: "", data: "" }, 1);
      db.close();
      return true;
    },
    movedAside: (how) => how !== "zero-length",
  },
  {
    file: "changes.db",
    async good(dir) {
      const store = await ChangeStore.open(
        join(dir, "changes.db"),
        createLogger("setup", { sink: new MemorySink() }),
      );
      for (let i = 0; i < 50; i++) {
        store.upsert({
          id: String(i),
          kind: "install-snap",
          summary: "s",
          status: "Done",
          ready: true,
          "spawn-time": new Date(i).toISOString(),
        }, i);
      }
      store.close();
      return await Deno.readFile(join(dir, "changes.db"));
    },
    async open(dir, log) {
      const store = await ChangeStore.open(join(dir, "changes.db"), log);
      const ok = store.integrity() === "ok";
      store.close();
      return ok;
    },
    movedAside: (how) => how !== "zero-length",
  },
];

for (const testCase of CASES) {
  Deno.test(`a corrupt ${testCase.file} (truncated, empty, random bytes) is moved aside, reported once, and the agent carries on`, async () => {
    const fault = {
      area: "corrupt",
      fault: `${testCase.file} truncated, zero-length, random bytes`,
      note: (testCase.file.endsWith(".db")
        ? "moved aside and recreated (an empty file is a valid empty database)"
        : "moved aside, reported once") + "; lost: the agent could not carry on",
    };
    await trial(fault, CORRUPTIONS.length, async (index, counts) => {
      const how = CORRUPTIONS[index];
      const dir = await Deno.makeTempDir();
      try {
        const good = await testCase.good(dir);
        for (const suffix of ["-wal", "-shm"]) {
          await Deno.remove(join(dir, testCase.file + suffix)).catch(() => {});
        }
        await Deno.writeFile(join(dir, testCase.file), corrupt(good, how));
        const logs = new MemorySink();
        const log = createLogger("test", { level: "debug", sink: logs });
        const carriesOn = await testCase.open(dir, log).catch(() =>
          false
        );
        const aside = [...Deno.readDirSync(dir)].filter((e) =>
          e.name.startsWith(`${testCase.file}.corrupt-`)
        );
        const reported = logs.matching(/ERROR .*(corrupt|unusable)/);
        const expected = testCase.movedAside(how) ? [1, 1] : [0, 0];
        if (!carriesOn) counts.lost++;
        else if (aside.length === expected[0] && reported.length === expected[1]) counts.recovered++;
        assertEquals(
          [aside.length, reported.length],
          expected,
          `${how}: moved aside and reported (or an empty database)\n${logs.lines.join("\n")}`,
        );
        assertOk(carriesOn, `${how}: the agent carries on`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
}

Deno.test({
  name:
    "a corrupt status file: `agent status` still answers, and the running watchdog daemon rewrites its own",
  ...E2E,
  async fn() {
    const dir = await Deno.makeTempDir();
    const snapd = FakeSnapd.start();
    const env = {
      SNAP_DATA: dir,
      SNAP_COMMON: dir,
      XDG_RUNTIME_DIR: join(dir, "run"),
      IOTAGENT_SNAPD_SOCKET: snapd.socketPath,
      IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
    };
    const runtime = paths(dir).runtimeDir;
    const watchdogFile = join(runtime, "watchdog-status.json");
    const watchdog = startAgent(["watchdog"], env);
    const counts = { tries: 0, answered: 0, rewritten: 0 };
    const parsesRunning = () => {
      try {
        return JSON.parse(Deno.readTextFileSync(watchdogFile)).state === "running";
      } catch {
        return false;
      }
    };
    try {
      await until(parsesRunning, "the watchdog's status file");
      for (const how of CORRUPTIONS) {
        counts.tries++;
        for (const name of ["status.json", "watchdog-status.json"]) {
          await Deno.writeFile(
            join(runtime, name),
            corrupt(new TextEncoder().encode('{"state":"running","pid":1}'), how),
          );
        }
        const { code, output } = await runAgent(["status"], env);
        // the agent's file reads as absent; the watchdog is running (its file may already be rewritten)
        if (code === 3 && /^Agent daemon +not running/m.test(output)) counts.answered++;
        if (await until(parsesRunning, "the rewrite", 5000).then(() => true, () => false)) counts.rewritten++;
      }
    } finally {
      await record({
        area: "corrupt",
        fault: "status files truncated, zero-length, random bytes under running daemons",
        tries: counts.tries,
        lost: counts.tries - counts.answered,
        repeatedEffects: 0,
        repeatedReplies: 0,
        recovered: counts.rewritten,
        note:
          `\`status\` answered ${counts.answered} of ${counts.tries}; the watchdog rewrote its file ${counts.rewritten} of ${counts.tries} times within 5 s`,
      });
      await watchdog.stop();
      await snapd.stop();
      await Deno.remove(dir, { recursive: true });
    }
    assertEquals(counts, {
      tries: CORRUPTIONS.length,
      answered: CORRUPTIONS.length,
      rewritten: CORRUPTIONS.length,
    });
  },
});
