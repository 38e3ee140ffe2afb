/**
 * `deno task mutants [--only NAME,…] [--jobs N] [--timeout SECONDS] [--baseline]`: the mutation gate. Each
 * mutation of tests/tools/mutations.ts is applied, alone, to a scratch copy of the project, and the tests that should
 * catch it run there (`deno test --no-check`: a type error is not a catch). It is caught when they fail within the
 * time limit; a hang counts as survived — a test that cannot finish proves nothing. A mutation whose text is no
 * longer in its file is stale, and fails the gate too. `--baseline` first runs every named test unmutated, so a
 * test that fails anyway cannot pass for a catch (CI runs the whole suite first instead).
 *
 * Prints a table (mutation, promise, tests, outcome, seconds) and exits 1 unless every mutation was caught.
 */
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { type Mutation, MUTATIONS } from "./mutations.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    jobs: { type: "string", default: "2" },
    timeout: { type: "string", default: "300" },
    baseline: { type: "boolean", default: false },
  },
});
const jobs = Math.max(1, Number(values.jobs));
const timeoutMs = Number(values.timeout) * 1000;
const selected = values.only
  ? MUTATIONS.filter((m) => values.only!.split(",").some((name) => m.name.includes(name)))
  : MUTATIONS;

/** How a mutation ended. */
type Outcome = "caught" | "SURVIVED" | "TIMED OUT" | "STALE";

/** The project's files, as git sees them (committed or not, ignored ones left out). */
async function projectFiles(): Promise<string[]> {
  const output = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  const files = new TextDecoder().decode(output.stdout).split("\n").filter((f) => f !== "");
  const present: string[] = [];
  for (const file of files) {
    if (await Deno.stat(join(ROOT, file)).then(() => true, () => false)) present.push(file);
  }
  return present;
}

/** A scratch copy of the project. */
async function scratchCopy(files: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "iot-agent-mutant-" });
  for (const file of files) {
    const target = join(dir, file);
    await Deno.mkdir(join(target, ".."), { recursive: true });
    await Deno.copyFile(join(ROOT, file), target);
  }
  return dir;
}

/** Applies the edits; false when one no longer matches exactly once. */
async function apply(dir: string, mutation: Mutation): Promise<boolean> {
  for (const { file, find, replace } of mutation.edits) {
    const path = join(dir, file);
    const text = await Deno.readTextFile(path);
    if (text.split(find).length !== 2) return false;
    await Deno.writeTextFile(path, text.replace(find, () => replace));
  }
  return true;
}

/** Runs the tests in `dir`; true when they pass, false when they fail, "timeout" when they do not finish. */
async function runTests(dir: string, tests: string[], filter?: string): Promise<boolean | "timeout"> {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--allow-all",
      "--unstable-net",
      "--no-check",
      ...(filter ? ["--filter", filter] : []),
      ...tests,
    ],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const status = await process.status;
  clearTimeout(timer);
  if (timedOut) return "timeout";
  return status.success;
}

interface Result {
  mutation: Mutation;
  outcome: Outcome;
  seconds: number;
}

async function judge(mutation: Mutation, files: string[]): Promise<Result> {
  const started = performance.now();
  const dir = await scratchCopy(files);
  try {
    let outcome: Outcome;
    if (!(await apply(dir, mutation))) outcome = "STALE";
    else {
      const passed = await runTests(dir, mutation.tests, mutation.filter);
      outcome = passed === "timeout" ? "TIMED OUT" : passed ? "SURVIVED" : "caught";
    }
    const result = { mutation, outcome, seconds: (performance.now() - started) / 1000 };
    console.error(`mutants: ${mutation.name}: ${outcome} (${result.seconds.toFixed(0)} s)`);
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `work` over `items`, `jobs` at a time, keeping the order of the results. */
async function pool<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  }));
  return results;
}

function table(results: Result[]): string {
  const rows = results.map(({ mutation, outcome, seconds }) => [
    mutation.name,
    mutation.promise,
    `${mutation.tests.map((t) => relative("tests", t)).join(", ")}${
      mutation.filter ? ` (${mutation.filter})` : ""
    }`,
    outcome,
    seconds.toFixed(0),
  ]);
  const header = ["mutation", "promise", "tests", "outcome", "s"];
  const all = [header, header.map(() => "---"), ...rows];
  return all.map((row) => `| ${row.join(" | ")} |`).join("\n");
}

const files = await projectFiles();
if (values.baseline) {
  const tests = [...new Set(selected.flatMap((m) => m.tests))];
  console.error(`mutants: baseline: ${tests.length} test files, unmutated`);
  const dir = await scratchCopy(files);
  const passed = await runTests(dir, tests);
  await Deno.remove(dir, { recursive: true });
  if (passed !== true) {
    console.error("mutants: the tests fail without any mutation: fix them first");
    Deno.exit(1);
  }
}
const started = performance.now();
const results = await pool(selected, (mutation) => judge(mutation, files));
console.log(table(results));
const bad = results.filter((r) => r.outcome !== "caught");
console.log(
  `\n${results.length - bad.length} of ${results.length} mutations caught in ${
    ((performance.now() - started) / 60_000).toFixed(1)
  } min${
    bad.length ? `; not caught: ${bad.map((r) => `${r.mutation.name} (${r.outcome})`).join(", ")}` : ""
  }`,
);
Deno.exit(bad.length === 0 ? 0 : 1);
