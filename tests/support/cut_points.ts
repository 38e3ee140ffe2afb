/**
 * Cutting the power at every write point of a scenario, on the power-cut filesystem (powercut_fs.ts): the
 * scenario runs once uncut to count its durable-relevant operations (writes, fsyncs, creates, renames, unlinks…);
 * then, for each chosen point k, it runs again on a fresh filesystem with the cut armed at its k-th operation —
 * the filesystem freezes there, whatever uses it is SIGKILLed, every change never synced is dropped — and the
 * scenario's judge brings the device back on what survived and checks its promises. Each cut is reported by the
 * kind of operation it fell after and the file it touched, so a table can show one row per kind of write point.
 */
import { basename } from "node:path";
import { mountPowercutFs, type PowercutFs } from "./powercut_fs.ts";
import { within } from "./wait.ts";
import { assertEquals } from "./assert.ts";
import { FULL, record } from "./reliability.ts";

/** A scenario whose write points are cut. */
export interface CutScenario<S> {
  /** Prepares a fresh world on `fs` up to where the cuts start; what it leaves must be durable already. */
  prepare(fs: PowercutFs): Promise<S>;
  /** The part whose write points are cut; resolves once it completed (it never completes while frozen). */
  run(state: S): Promise<void>;
  /** SIGKILLs every process that uses the filesystem (called while it is frozen). */
  kill(state: S): Promise<void>;
  /** After the cut (or, with `cut` undefined, after an uncut run): brings the device back and judges it. */
  judge(state: S, cut: CutPoint | undefined): Promise<CutVerdict>;
  /** Stops what `prepare` started. */
  dispose(state: S): Promise<void>;
}

/** Where a cut fell: after the k-th durable-relevant operation, of this kind, on this file. */
export interface CutPoint {
  k: number;
  /** The operation (write, fsync, fsyncdir, create, rename, unlink, mkdir…), when the filesystem said. */
  op: string;
  /** The file it touched, as a kind of file: `agent.db-wal`, `.secret`, `.secret.tmp`, `data/`. */
  file: string;
}

/** What one cut left, as the judge found it. */
export interface CutVerdict {
  /** Actions unanswered or effects that never happened; for state files, a device left unable to go on. */
  lost: number;
  repeatedEffects: number;
  repeatedReplies: number;
  contradictory: number;
  /** Databases failing `PRAGMA integrity_check`, files found half-written. */
  damaged: number;
  /** The device came back without a human. */
  recovered: boolean;
  /** What was wrong, one line each (empty when it survived). */
  problems: string[];
  /** Outcomes the promise allows but the table should show (e.g. "inside the enrollment window"). */
  notes?: string[];
}

/** A verdict with nothing found yet. */
export function emptyVerdict(): CutVerdict {
  return {
    lost: 0,
    repeatedEffects: 0,
    repeatedReplies: 0,
    contradictory: 0,
    damaged: 0,
    recovered: true,
    problems: [],
    notes: [],
  };
}

/** How long a run may take before it counts as hung, in ms. */
const RUN_TIMEOUT_MS = 120_000;

/** Runs the scenario once uncut and returns how many durable-relevant operations it made. */
export async function countWritePoints<S>(
  scenario: CutScenario<S>,
): Promise<{ ops: number; verdict: CutVerdict }> {
  return await onFreshFs(async (fs) => {
    const state = await scenario.prepare(fs);
    try {
      await fs.resetCounts();
      await within(scenario.run(state), "the uncut run", RUN_TIMEOUT_MS);
      const ops = (await fs.status()).durableOps;
      return { ops, verdict: await scenario.judge(state, undefined) };
    } finally {
      await scenario.dispose(state);
    }
  });
}

/**
 * Runs the scenario cut at its `k`-th operation and judges it; returns where the cut fell (undefined when the run
 * completed before its k-th operation: then it is judged uncut).
 */
export async function cutAt<S>(
  scenario: CutScenario<S>,
  k: number,
): Promise<{ cut: CutPoint | undefined; verdict: CutVerdict }> {
  return await onFreshFs(async (fs) => {
    const state = await scenario.prepare(fs);
    try {
      await fs.resetCounts();
      await fs.cutAt(k);
      const ran = scenario.run(state).then(() => "completed" as const);
      // never rejects: a run that completes first leaves it waiting out its time
      const froze = fs.waitFrozen(RUN_TIMEOUT_MS).then(() => "frozen" as const, () => "never" as const);
      await within(Promise.race([ran, froze]), `the run cut at ${k}`, RUN_TIMEOUT_MS);
      ran.catch(() => {}); // the run fails once its processes die
      let cut: CutPoint | undefined;
      // a run may complete right as its last operation froze the filesystem: frozen is frozen
      if (await fs.frozen()) {
        const { lastOp } = await fs.status();
        cut = { k, op: lastOp?.op ?? "?", file: fileKind(lastOp?.path ?? "?") };
        await scenario.kill(state);
        await fs.restore();
      } else {
        await fs.cutAt(0);
      }
      return { cut, verdict: await scenario.judge(state, cut) };
    } finally {
      await scenario.dispose(state);
    }
  });
}

/** The points to cut at: all of 1…n, or a sample of `size` spread evenly (always the first and the last). */
export function cutPoints(n: number, sample?: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i + 1);
  if (sample === undefined || sample >= n) return all;
  return [...new Set(Array.from({ length: sample }, (_, i) => Math.round(1 + i * (n - 1) / (sample - 1))))];
}

/** Every point in the full run (`deno task reliability`), a sample of `size` under `deno task test`. */
export function sampledPoints(size: number): (n: number) => number[] {
  return (n) => FULL ? cutPoints(n) : cutPoints(n, size);
}

/** A file as a kind: temporary names and sqlite's companions keep their role, folders end with `/`. */
export function fileKind(path: string): string {
  const name = basename(path) || "/";
  return name.replace(/\.tmp-\d+-[0-9a-f]+$/, ".tmp").replace(
    /^snap_changes_\d+\.json$/,
    "snap_changes_<time>.json",
  );
}

async function onFreshFs<T>(fn: (fs: PowercutFs) => Promise<T>): Promise<T> {
  const fs = await mountPowercutFs();
  try {
    return await fn(fs);
  } finally {
    await fs.unmount();
  }
}

/** One row of the report: the cuts that fell after one kind of operation on one kind of file. */
export interface CutRow {
  kind: string;
  cuts: number;
  lost: number;
  repeatedEffects: number;
  repeatedReplies: number;
  contradictory: number;
  damaged: number;
  recovered: number;
  problems: string[];
  notes: string[];
}

/**
 * Counts the scenario's write points, cuts at each of `points(n)` and returns the rows, one per kind of write
 * point (`fsync agent.db-wal`, `rename .secret`…), in the order they first came.
 */
export async function cutEveryPoint<S>(
  scenario: CutScenario<S>,
  points: (n: number) => number[],
  { concurrency = 1 }: { concurrency?: number } = {},
): Promise<{ ops: number; rows: CutRow[] }> {
  const counted = await countWritePoints(scenario);
  const rows = new Map<string, CutRow>();
  const add = (kind: string, verdict: CutVerdict) => {
    const row = rows.get(kind) ?? {
      kind,
      cuts: 0,
      lost: 0,
      repeatedEffects: 0,
      repeatedReplies: 0,
      contradictory: 0,
      damaged: 0,
      recovered: 0,
      problems: [],
      notes: [],
    };
    row.cuts++;
    row.lost += verdict.lost;
    row.repeatedEffects += verdict.repeatedEffects;
    row.repeatedReplies += verdict.repeatedReplies;
    row.contradictory += verdict.contradictory;
    row.damaged += verdict.damaged;
    if (verdict.recovered) row.recovered++;
    row.problems.push(...verdict.problems);
    row.notes.push(...verdict.notes ?? []);
    rows.set(kind, row);
  };
  add("none (the uncut run)", counted.verdict);
  // each cut has its filesystem and world of its own: several can run at once (they mostly wait)
  const queue = points(counted.ops);
  const results: { k: number; cut?: CutPoint; verdict: CutVerdict }[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
      results.push({ k, ...await cutAt(scenario, k) });
    }
  }));
  for (const { k, cut, verdict } of results.sort((a, b) => a.k - b.k)) {
    add(cut ? `${cut.op} ${cut.file}` : "none (the run ended before its cut)", {
      ...verdict,
      problems: verdict.problems.map((p) => `cut at ${k}: ${p}`),
    });
  }
  return { ops: counted.ops, rows: [...rows.values()] };
}

/** Records a row per kind of write point for docs/reliability.md, then fails with every problem they hold. */
export async function reportCuts(scenario: string, ops: number, rows: CutRow[]): Promise<void> {
  for (const row of rows) {
    await record({
      area: "powercut",
      fault: `${scenario} (${ops} write points): cut after ${row.kind}`,
      tries: row.cuts,
      lost: row.lost,
      repeatedEffects: row.repeatedEffects,
      repeatedReplies: row.repeatedReplies,
      contradictory: row.contradictory,
      damaged: row.damaged,
      recovered: row.recovered,
      note: [...new Set(row.notes)].join("; "),
    });
  }
  assertEquals(rows.flatMap((row) => row.problems), [], `${scenario}: what the cuts left`);
}
