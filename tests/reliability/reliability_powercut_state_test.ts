/**
 * Power cuts at every write point of the state files' lives (tests/support/cut_points.ts on the power-cut
 * filesystem): `agent configure --url` replacing `params`, `unregister` clearing the enrollment, and the watchdog
 * writing its report and upserting snap changes into `changes.db`. After each cut the files are whole or absent
 * — never half-written —, each one is the old or the new state, the databases pass `PRAGMA integrity_check`, and
 * the same command (or daemon) run again on what survived finishes the job without a human.
 */
import { join } from "node:path";
import { assertEquals } from "../support/assert.ts";
import { PROJECT_ROOT, startAgent } from "../support/agent_process.ts";
import { Child } from "../support/child.ts";
import {
  cutEveryPoint,
  type CutScenario,
  type CutVerdict,
  emptyVerdict,
  reportCuts,
  sampledPoints,
} from "../support/cut_points.ts";
import {
  integrity,
  type PowercutWorld,
  powercutWorld,
  wholeOrAbsent,
  writeDurably,
} from "../support/powercut_world.ts";
import { FULL } from "../support/reliability.ts";
import { until, within } from "../support/wait.ts";
import { E2E } from "../support/world.ts";

/** Each of `files` whole or absent; counts and names the half-written ones. */
async function wholeFiles(
  dir: string,
  files: string[],
  verdict: CutVerdict,
): Promise<Record<string, string>> {
  const shapes: Record<string, string> = {};
  for (const file of files) {
    shapes[file] = await wholeOrAbsent(join(dir, file));
    if (shapes[file].startsWith("half")) {
      verdict.damaged++;
      verdict.problems.push(`${file}: ${shapes[file]}`);
    }
  }
  return shapes;
}

/** Runs a command to its end (30 s at most); its exit code. */
async function finish(child: Child, what: string): Promise<number> {
  return (await within(child.status, what, 30_000)).code;
}

interface CommandState extends PowercutWorld {
  child?: Child;
}

const kill = async (state: CommandState) => void await state.child?.stop("SIGKILL");
const dispose = async ({ world }: PowercutWorld) => await world.stop();

const OLD_URL = "https://identity-old.example.com";
const NEW_URL = "https://identity-new.example.com";
const urlOf = async (dir: string) => JSON.parse(await Deno.readTextFile(join(dir, "params"))).url;

/** `agent configure --url` replacing the `params` of an earlier configure. */
const configure: CutScenario<CommandState> = {
  async prepare(fs) {
    const setup = await powercutWorld(fs);
    await writeDurably(join(setup.dataDir, "params"), JSON.stringify({ url: OLD_URL, path: "" }));
    return setup;
  },
  async run(state) {
    state.child = startAgent(["configure", "--url", NEW_URL], state.env);
    assertEquals(await finish(state.child, "agent configure"), 0, state.child.tail(5));
  },
  kill,
  async judge(state, cut) {
    const verdict = emptyVerdict();
    const shapes = await wholeFiles(state.dataDir, ["params"], verdict);
    if (shapes.params !== "whole") verdict.problems.push(`params ${shapes.params}: the old one is gone`);
    else if (![OLD_URL, NEW_URL].includes(await urlOf(state.dataDir))) {
      verdict.contradictory++;
      verdict.problems.push(`params holds ${await urlOf(state.dataDir)}, neither the old URL nor the new`);
    }
    if (cut) {
      const again = startAgent(["configure", "--url", NEW_URL], state.env);
      if (await finish(again, "agent configure again") !== 0 || await urlOf(state.dataDir) !== NEW_URL) {
        verdict.recovered = false;
        verdict.problems.push(`configure again did not finish the job:\n${again.tail(5)}`);
      }
    }
    return verdict;
  },
  dispose,
};

/** `unregister` clearing an enrollment (`.secret`, then `params`). */
const unregister: CutScenario<CommandState> = {
  async prepare(fs) {
    const setup = await powercutWorld(fs);
    await writeDurably(join(setup.dataDir, "params"), JSON.stringify({ url: OLD_URL, path: "" }));
    await writeDurably(join(setup.dataDir, ".secret"), JSON.stringify({ id: "enrolled" }));
    return setup;
  },
  async run(state) {
    state.child = unregisterCommand(state.env);
    assertEquals(await finish(state.child, "unregister"), 0, state.child.tail(5));
  },
  kill,
  async judge(state, cut) {
    const verdict = emptyVerdict();
    const shapes = await wholeFiles(state.dataDir, [".secret", "params"], verdict);
    if (shapes[".secret"] === "whole" && shapes.params === "absent") {
      verdict.contradictory++;
      verdict.problems.push(".secret came back without params: the removals were not kept in order");
    }
    if (cut) {
      const again = unregisterCommand(state.env);
      const code = await finish(again, "unregister again");
      const left = await wholeFiles(state.dataDir, [".secret", "params"], emptyVerdict());
      if (code !== 0 || left[".secret"] !== "absent" || left.params !== "absent") {
        verdict.recovered = false;
        verdict.problems.push(`unregister again did not finish the job (${code}, ${JSON.stringify(left)})`);
      }
    }
    return verdict;
  },
  dispose,
};

function unregisterCommand(env: Record<string, string>): Child {
  return Child.spawn(Deno.execPath(), ["run", "--allow-all", join(PROJECT_ROOT, "unregister.ts")], {
    cwd: PROJECT_ROOT,
    env: { NO_COLOR: "1", ...env },
  });
}

/** The reports in `dir`. */
async function reports(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("snap_changes_")) names.push(entry.name);
  }
  return names;
}

/** The watchdog daemon logging snapd's changes into changes.db and writing its report on a hung change. */
const watchdog: CutScenario<CommandState> = {
  async prepare(fs) {
    const setup = await powercutWorld(fs);
    setup.world.snapd.addChange("install-snap", 'Install "slow" snap', "Doing", undefined, ["slow"]);
    setup.world.snapd.addChange("remove-snap", 'Remove "old" snap', "Done", undefined, ["old"]);
    setup.env = {
      ...setup.env,
      IOTAGENT_SNAPD_SOCKET: setup.world.snapd.socketPath,
      XDG_RUNTIME_DIR: setup.world.env.XDG_RUNTIME_DIR,
      IOTAGENT_WATCHDOG_CHANGE_TIMEOUT: "1s",
      IOTAGENT_WATCHDOG_CHECK_INTERVAL: "1s",
      IOTAGENT_WATCHDOG_REBOOT: "false",
    };
    return setup;
  },
  async run(state) {
    state.child = startAgent(["watchdog"], state.env);
    await until(
      async () => {
        const [name] = await reports(state.dataDir);
        return name !== undefined && await wholeOrAbsent(join(state.dataDir, name)) === "whole";
      },
      "the watchdog's report",
      30_000,
    );
    await state.child.stop("SIGTERM");
  },
  kill,
  async judge(state, cut) {
    const verdict = emptyVerdict();
    await wholeFiles(state.dataDir, await reports(state.dataDir), verdict);
    const checked = integrity(join(state.dataDir, "changes.db"));
    if (!["ok", "absent"].includes(checked)) {
      verdict.damaged++;
      verdict.problems.push(`changes.db: ${checked}`);
    }
    if (cut) {
      const again = startAgent(["watchdog"], state.env);
      let exited = false;
      again.status.then(() => (exited = true));
      const status = join(state.world.env.XDG_RUNTIME_DIR, "iot-agent", "watchdog-status.json");
      const running = await until(
        async () => (await wholeOrAbsent(status)) === "whole" && !exited,
        "the watchdog running again",
        15_000,
      ).then(() => true, () => false);
      if (!running) {
        verdict.recovered = false;
        verdict.problems.push(`the watchdog did not start again:\n${again.tail(8)}`);
      }
      await again.stop("SIGTERM");
    }
    return verdict;
  },
  dispose,
};

for (
  const [name, scenario] of [
    ["agent configure --url replacing params", configure],
    ["unregister clearing .secret and params", unregister],
    ["the watchdog's report and change log", watchdog],
  ] as const
) {
  Deno.test({
    name: `power cut at every write point of ${name}: whole or absent, old or new, finished when run again`,
    ...E2E,
    async fn() {
      const { ops, rows } = await cutEveryPoint(scenario, sampledPoints(3), { concurrency: FULL ? 3 : 1 });
      await reportCuts(name, ops, rows);
    },
  });
}
