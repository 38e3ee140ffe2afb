/** One doctor check's outcome, and the report that lists them. */

/** One check's outcome. */
export interface CheckResult {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  hint?: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });

export const warn = (name: string, detail: string, hint?: string): CheckResult => ({
  name,
  status: "warn",
  detail,
  hint,
});

export const fail = (name: string, detail: string, hint?: string): CheckResult => ({
  name,
  status: "fail",
  detail,
  hint,
});

/** The report: one line per check, hints indented; `failed` when any check failed. */
export function formatDoctor(results: CheckResult[]): { text: string; failed: boolean } {
  const label = { ok: "[ ok ]", warn: "[warn]", fail: "[FAIL]" };
  const lines = results.flatMap((
    r,
  ) => [`${label[r.status]} ${r.name}: ${r.detail}`, ...(r.hint ? [`       hint: ${r.hint}`] : [])]);
  return { text: lines.join("\n"), failed: results.some((r) => r.status === "fail") };
}
