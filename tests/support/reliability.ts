/**
 * The reliability suite's bookkeeping: each fault test records what it tried and what came of it, and
 * `deno task reliability` (tests/reliability/reliability_report.ts) turns the records into docs/reliability.md. Under
 * `deno task test` the same tests run with small counts and record nothing.
 */

/** The outcome of one fault, over `tries` attempts. */
export interface Outcome {
  /** What was done to the agent, e.g. "SIGKILL after the journal write, before the PUBACK". */
  fault: string;
  /** The area of the table: "kill", "outage", "disk", "clock", "tls", "fuzz", "corrupt", "secrets", "flood". */
  area: string;
  tries: number;
  /** Actions that got no reply, or whose effect never happened. */
  lost: number;
  /** Effects done twice (snapd requests), and replies sent twice. */
  repeatedEffects: number;
  repeatedReplies: number;
  /** Tries after which the agent answered again by itself. */
  recovered: number;
  /** Replies that contradict what snapd did (a failure of a valid step, another change, a snap left opposite). */
  contradictory?: number;
  /** Databases that failed `PRAGMA integrity_check`, or files found half-written. */
  damaged?: number;
  note?: string;
}

/** True for the full run (`deno task reliability`), false under `deno task test`. */
export const FULL = Deno.env.get("RELIABILITY_FULL") === "1";

/** `fast` under `deno task test`, `full` in the full run. */
export function count(fast: number, full: number): number {
  return FULL ? full : fast;
}

/** Records an outcome for the report (nothing outside `deno task reliability`). */
export async function record(outcome: Outcome): Promise<void> {
  const path = Deno.env.get("RELIABILITY_LOG");
  if (!path) return;
  await Deno.writeTextFile(path, JSON.stringify(outcome) + "\n", { append: true });
}

/** What a try found, counted as it happened. */
export interface Counts {
  tries: number;
  lost: number;
  repeatedEffects: number;
  repeatedReplies: number;
  recovered: number;
  contradictory: number;
  damaged: number;
}

/**
 * Runs `tries` tries of one fault, each given the running counts to add to *before* it asserts anything, and
 * records the counts whatever happens — a try that fails (an assertion, a timeout, a crash of the harness) is in
 * the report as it happened, and the row prints "NOT survived", while the test still fails.
 */
export async function trial(
  fault: { area: string; fault: string; note?: string | ((counts: Counts) => string) },
  tries: number,
  run: (index: number, counts: Counts) => Promise<void>,
): Promise<void> {
  const counts: Counts = {
    tries: 0,
    lost: 0,
    repeatedEffects: 0,
    repeatedReplies: 0,
    recovered: 0,
    contradictory: 0,
    damaged: 0,
  };
  try {
    for (let index = 0; index < tries; index++) {
      counts.tries++;
      await run(index, counts);
    }
  } finally {
    const note = typeof fault.note === "function" ? fault.note(counts) : fault.note;
    await record({ area: fault.area, fault: fault.fault, ...counts, note });
  }
}
