/**
 * The reliability suite's bookkeeping: each fault test records what it tried and what came of it, and
 * `deno task reliability` (tests/reliability_report.ts) turns the records into docs/reliability.md. Under
 * `deno task test` the same tests run with small counts and record nothing.
 */

/** The outcome of one fault, over `tries` attempts. */
export interface Outcome {
  /** What was done to the agent, e.g. "SIGKILL after the journal write, before the PUBACK". */
  fault: string;
  /** The area of the table: "kill", "outage", "disk", "clock", "tls", "fuzz", "corrupt", "secrets". */
  area: string;
  tries: number;
  /** Actions that got no reply, or whose effect never happened. */
  lost: number;
  /** Effects done twice (snapd requests), and replies sent twice. */
  repeatedEffects: number;
  repeatedReplies: number;
  /** Tries after which the agent answered again by itself. */
  recovered: number;
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
